"""The tagger's SFT stage with `processes: 2` on the real embedded model (SmolLM2-135M): the stage
process keeps its MLflow run and starts the training in two CPU processes through
`accelerate launch` (gloo). Rank 0 alone writes the adapter and logs the per-step metrics into the
stage's run; the adapter loads and generates; nothing of the group is left behind."""
from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import pytest
import torch

from tagflow.config import load_config
from tagflow.core.tracking import read_run_id
from tagflow.tagger import paths, sft
from tagflow.tagger.sft import ADAPTER_META, load_adapter

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "Extract UNESCO Thesaurus keywords from this text:\n\n{text}"
EXAMPLES = [("Museums preserve the cultural heritage of a region.", ["Cultural heritage", "Museums"]),
            ("Teachers in primary schools adapt their methods to each pupil.", ["Primary education", "Teachers"]),
            ("Rivers flood when heavy rain falls on saturated soil.", ["Floods", "Rivers"]),
            ("Libraries lend books and offer reading rooms to the public.", ["Libraries", "Books"]),
            ("Farmers rotate crops to keep the soil fertile.", ["Agriculture", "Soil"]),
            ("Vaccines protect children against measles.", ["Vaccination", "Children"])]


def write_split(path: Path, examples) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({
        "prompt": [{"role": "user", "content": PROMPT.format(text=text)}],
        "completion": [{"role": "assistant", "content": json.dumps(keywords)}]}) + "\n"
        for text, keywords in examples))


@pytest.fixture(scope="module")
def trained(mlflow_store):
    """The smoke profile's SFT stage, 3 steps in 2 processes; yields (summary, stage output text)."""
    write_split(mlflow_store / paths.SFT_DIR / "train.jsonl", EXAMPLES[:4])
    write_split(mlflow_store / paths.SFT_DIR / "val.jsonl", EXAMPLES[4:])
    cfg = load_config(ROOT / "params.yaml", "smoke")
    assert cfg.tagger.infer.backend == "llm"
    cfg.tagger.sft.processes, cfg.tagger.sft.max_steps, cfg.tagger.sft.max_length = 2, 3, 128
    log = mlflow_store / "stage.log"
    with log.open("w") as out:   # the group's processes write to the inherited fds 1 and 2
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            summary = sft.run(cfg)
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)
    return summary, log.read_text()


def test_two_processes_train_and_rank_0_writes_the_adapter_once(trained, mlflow_store):
    summary, output = trained
    assert summary["steps"] == 3 and summary["processes"] == 2, summary
    assert output.count("wrote the adapter") == 1 and "rank 0 of 2 wrote the adapter" in output, output[-3000:]
    adapter = mlflow_store / paths.ADAPTER_DIR
    meta = json.loads((adapter / ADAPTER_META).read_text())
    assert meta["prompt"] == PROMPT and meta["base_model"].startswith("embedded:")
    assert (adapter / "adapter_model.safetensors").exists()
    leftovers = [p.name for p in (mlflow_store / "artifacts").iterdir() if p.name.startswith(".")
                 and p.name != ".sft-work"]
    assert leftovers == [], leftovers        # no group folder, no half-written adapter copy
    assert json.loads((mlflow_store / paths.METRICS_TRAIN).read_text()) == summary


def test_the_adapter_loads_and_generates(trained, mlflow_store):
    from tagflow.core.generation import generate_chat

    tok, model, meta = load_adapter(mlflow_store / paths.ADAPTER_DIR)
    conv = [[{"role": "user", "content": PROMPT.format(text=EXAMPLES[0][0])}]]
    answers = generate_chat(tok, model, conv, max_new_tokens=8, batch_size=1)
    assert len(answers) == 1 and answers[0].strip()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_stage_run_has_the_train_metrics_once(trained, mlflow_store):
    summary, _ = trained
    client = mlflow.MlflowClient()
    run = client.get_run(read_run_id(mlflow_store / paths.RUN_FILE))
    assert run.info.status == "FINISHED" and run.data.params["sft.processes"] == "2"
    for key in ("train/loss", "train/eval_loss"):      # one training log (step 3) and one evaluation
        history = client.get_metric_history(run.info.run_id, key)
        assert [m.step for m in history] == [3], (key, history)   # rank 1 logged nothing
    assert run.data.metrics["train_loss"] == summary["train_loss"]
    assert run.data.metrics["steps"] == 3


@pytest.fixture(scope="module")
def ipo_trained(tmp_path_factory):
    """IPO in 2 processes over a hand-made SFT adapter and pairs (as tests/model/test_ipo.py)."""
    from tagflow.tagger import ipo
    from tagflow.tagger.config import IPOConfig
    from tests.model.test_ipo import pairs_file, sft_adapter

    root = tmp_path_factory.mktemp("ipo-2")
    cfg = IPOConfig(max_steps=2, batch_size=1, max_length=128, learning_rate=5e-3, lora_r=4, lora_alpha=8,
                    processes=2)
    summary = ipo.train(cfg, sft_adapter(root / "sft"), pairs_file(root / "pairs.jsonl"), root / "tagger_ipo",
                        log_to_mlflow=False)
    return root, summary


def test_ipo_in_two_processes_writes_the_stacked_dir(ipo_trained):
    from tests.model.test_ipo import weights

    root, summary = ipo_trained
    assert summary["steps"] == 2 and summary["pairs"] == 4 and summary["processes"] == 2, summary
    meta = json.loads((root / "tagger_ipo" / ADAPTER_META).read_text())
    assert meta["adapters"] == ["sft", "ipo"]
    assert sorted(p.name for p in root.iterdir()) == ["pairs.jsonl", "sft", "tagger_ipo"]   # nothing left over
    _, sft_model, _ = load_adapter(root / "sft")
    _, ipo_model, _ = load_adapter(root / "tagger_ipo")
    before, after = weights(sft_model), weights(ipo_model)
    assert any(not torch.allclose(before[k], after[k]) for k in before), "IPO changed nothing"
