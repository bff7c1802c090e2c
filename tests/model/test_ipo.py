"""IPO on the real embedded model (SmolLM2-135M-Instruct): a few steps over hand-written pairs on
top of an SFT adapter, saved as a stacked dir (sft/ + ipo/) that loads, generates and differs
from the SFT model; a plain single-adapter dir still loads as before."""
from __future__ import annotations

import json

import pytest
import torch

from tagflow.core.errors import DataError, ModelError
from tagflow.tagger.config import IPOConfig
from tagflow.tagger.ipo import train
from tagflow.tagger.sft import ADAPTER_META, adapter_meta, load_adapter

BASE = "embedded:smollm2-135m-instruct"
PROMPT = "Extract UNESCO Thesaurus keywords from this text:\n\n{text}"
TEXTS = ["Museums preserve the cultural heritage of a region.",
         "Teachers in primary schools adapt their methods to each pupil.",
         "Rivers flood when heavy rain falls on saturated soil.",
         "Libraries lend books and offer reading rooms to the public."]


def sft_adapter(path):
    """An SFT adapter dir as tagger_train writes it (LoRA with its B matrices nudged off zero,
    so merging it changes the base)."""
    from peft import LoraConfig, get_peft_model

    from tagflow.core.models import load_causal_lm

    tok, model = load_causal_lm(BASE)
    torch.manual_seed(0)
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    for name, param in lora.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.01)
    lora.save_pretrained(path)
    tok.save_pretrained(path)
    (path / ADAPTER_META).write_text(json.dumps({"base_model": BASE, "prompt": PROMPT}))
    return path


def pairs_file(path):
    rows = [{"prompt": [{"role": "user", "content": PROMPT.format(text=t)}],
             "chosen": [{"role": "assistant", "content": json.dumps(["Cultural heritage", "Museums"][: 1 + i % 2])}],
             "rejected": [{"role": "assistant", "content": "Sure! Here are some keywords: heritage"}]}
            for i, t in enumerate(TEXTS)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().clone() for k, v in model.state_dict().items() if "proj" in k}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ipo")
    sft = sft_adapter(root / "sft")
    cfg = IPOConfig(max_steps=3, batch_size=2, max_length=256, learning_rate=5e-3, lora_r=4, lora_alpha=8)
    summary = train(cfg, sft, pairs_file(root / "pairs.jsonl"), root / "tagger_ipo", log_to_mlflow=False)
    return root, summary


def test_stacked_dir_is_saved_with_both_adapters(trained):
    root, summary = trained
    out = root / "tagger_ipo"
    assert summary["steps"] == 3 and summary["pairs"] == 4
    meta = json.loads((out / ADAPTER_META).read_text())
    assert meta == {"base_model": BASE, "prompt": PROMPT, "adapters": ["sft", "ipo"]}
    for sub in ("sft", "ipo"):
        assert (out / sub / "adapter_config.json").exists()
    assert (out / "tokenizer_config.json").exists()
    assert not (root / ".ipo-work").exists()


def test_stacked_dir_loads_generates_and_differs_from_sft(trained):
    from tagflow.core.generation import generate_chat

    root, _ = trained
    tok, sft_model, sft_meta = load_adapter(root / "sft")          # a plain single-adapter dir
    _, ipo_model, ipo_meta = load_adapter(root / "tagger_ipo")     # the stacked one
    assert sft_meta["prompt"] == ipo_meta["prompt"] == PROMPT
    before, after = weights(sft_model), weights(ipo_model)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.allclose(before[k], after[k])]
    assert changed, "IPO left the merged weights as the SFT model's"
    conv = [[{"role": "user", "content": PROMPT.format(text=TEXTS[0])}]]
    answers = generate_chat(tok, ipo_model, conv, max_new_tokens=8, batch_size=1)
    assert len(answers) == 1 and answers[0].strip()


def test_stacked_dir_with_a_missing_adapter_is_refused(trained, tmp_path):
    import shutil

    root, _ = trained
    broken = tmp_path / "broken"
    shutil.copytree(root / "tagger_ipo", broken)
    shutil.rmtree(broken / "ipo")
    with pytest.raises(ModelError, match=r"\['ipo'\].*missing"):
        adapter_meta(broken)


def test_no_pairs_is_a_one_line_error(trained, tmp_path):
    root, _ = trained
    empty = tmp_path / "pairs.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="no preference pairs"):
        train(IPOConfig(max_steps=1), root / "sft", empty, tmp_path / "out", log_to_mlflow=False)
