"""`generate_static` (preallocated KV cache, fixed batch shape; CUDA graphs on a GPU) must decode
greedily: on the real embedded model (SmolLM2-135M), with prompts of different lengths (left
padding) and a last batch smaller than the others (padded with repeated rows), every token it
writes is the argmax of a plain forward pass over prompt + answer so far (no cache, no padding),
and an answer ends where an end-of-sequence token is written. Compared with the model's own
logits rather than with `generate`'s answers: two correct loops may still part at a near-tie,
since their kernels sum in different orders."""
from __future__ import annotations

import pytest
import torch

from tagflow.core.errors import ConfigError
from tagflow.core.generation import generate_static
from tagflow.tagger.backends.llm import LLMBackend

TEXTS = ["Museums and archaeological sites preserve the cultural heritage of a region.",
         "Hi",
         "Teachers in primary schools adapt their teaching methods to each pupil.",
         "Climate change threatens coastal fisheries."]
NEW = 8


@pytest.fixture(scope="module")
def lm():
    from tagflow.core.models import load_causal_lm

    return load_causal_lm("embedded:smollm2-135m-instruct")


def conversations():
    return [[{"role": "user", "content": f"Extract UNESCO Thesaurus keywords from this text:\n\n{t}"}] for t in TEXTS]


def prompt_ids(tok, conversation):
    text = tok.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_every_token_is_the_greedy_choice(lm, attention):
    tok, model = lm
    model.set_attn_implementation(attention)
    try:
        answers = generate_static(tok, model, conversations(), max_new_tokens=NEW, batch_size=3, decode=False)
        eos = model.generation_config.eos_token_id
        eos = set(eos if isinstance(eos, list) else [eos])
        for conversation, answer in zip(conversations(), answers):
            ids = prompt_ids(tok, conversation)
            assert answer and len(answer) <= NEW and not eos & set(answer)
            with torch.inference_mode():
                logits = model(torch.tensor([ids + answer])).logits[0, len(ids) - 1:].float()
            for step, token in enumerate(answer):
                assert logits[step, token] >= logits[step].max() - 1e-3, (conversation, step)
            if len(answer) < NEW:                   # it stopped: the next greedy token ends the answer
                assert int(logits[len(answer)].argmax()) in eos
    finally:
        model.set_attn_implementation("sdpa")
    assert len({tuple(a) for a in answers}) == len(TEXTS)   # real, different answers


def test_an_answer_ends_at_the_end_of_sequence_token(lm):
    """Make a token that the first answer writes mid-way an end-of-sequence token too: answers are
    cut just before it, and the answers that never write it are unchanged."""
    tok, model = lm
    full = generate_static(tok, model, conversations(), max_new_tokens=NEW, batch_size=4, decode=False)
    stop = full[0][4]
    original = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = (original if isinstance(original, list) else [original]) + [stop]
    try:
        cut = generate_static(tok, model, conversations(), max_new_tokens=NEW, batch_size=4, decode=False)
    finally:
        model.generation_config.eos_token_id = original
    assert cut == [a[:a.index(stop)] if stop in a else a for a in full]
    assert len(cut[0]) <= 4


def test_static_engine_refuses_constrained_decoding():
    with pytest.raises(ConfigError, match="engine"):
        LLMBackend._check({"engine": "static", "decoding": "constrained"})
    with pytest.raises(ConfigError, match="engine"):
        LLMBackend._check({"engine": "vllm"})
