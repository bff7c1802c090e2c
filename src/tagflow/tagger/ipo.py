"""Preference tuning of the tagger: IPO (TRL DPOTrainer, `loss_type=["ipo"]`) on the pairs of
`tagger.pairs`, with a new LoRA adapter on top of the SFT model.

The base model is loaded with the SFT adapter merged in; the trainer adds the new LoRA
(`peft_config`) and, given no `ref_model`, uses the same weights with that adapter disabled as the
reference, so the reference is exactly the SFT model. The saved model dir stacks both adapters:
`sft/` (a copy of the SFT adapter), `ipo/` (the new one), the tokenizer and `tagger.json` with
`"adapters": ["sft", "ipo"]`; `sft.load_adapter` merges them in that order. Training is in the
runtime's full dtype (bf16 on CUDA): merging into 4-bit weights is not exact, so no QLoRA here.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import json
import shutil
import time
from pathlib import Path

from ..core import distributed
from ..core.errors import DataError
from ..core.io import atomic_path, read_jsonl
from ..core.log import get_logger
from .config import IPOConfig
from .sft import (ADAPTER_META, _progress_callback, adapter_meta, adapter_paths, no_adapter, record_skip,
                  trainer_args)

if TYPE_CHECKING:
    from ..config import Config

STACK = ["sft", "ipo"]   # sub-folders of the saved model dir, in merge order
log = get_logger("ipo")


def _dataset(path: str | Path):
    from datasets import Dataset

    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path}: no preference pairs (see metrics/pairs.json)")
    return Dataset.from_list([{"prompt": r["prompt"], "chosen": r["chosen"], "rejected": r["rejected"]}
                              for r in rows])


def train(cfg: IPOConfig, sft_dir: str | Path, pairs_path: str | Path, out_dir: str | Path,
          log_to_mlflow: bool = True, mlflow_run_id: str | None = None) -> dict:
    """Train the IPO adapter over the SFT model and write the stacked model dir to out_dir. With
    `cfg.processes` > 1 the training runs in a launched group (tagger.train_group)."""
    from ..core.models import load_causal_lm, pick_runtime

    meta = adapter_meta(sft_dir)
    if meta.get("adapters"):
        raise DataError(f"{sft_dir}: IPO goes on a plain SFT adapter dir, not a stacked one")
    if distributed.should_launch(cfg.processes):
        _dataset(pairs_path)   # no pairs: the same one-line error, before any process starts
        from .train_group import launch
        return launch("ipo", cfg, meta["base_model"], log_to_mlflow, sft_dir=Path(sft_dir),
                      pairs_path=Path(pairs_path), out_dir=Path(out_dir))
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer
    # a base-model dir (no adapters, prefeval.base_model_dir) is allowed: the policy is then the
    # base model itself, as in the tag-mode measurement, and the saved stack is the IPO adapter alone
    stack = STACK if meta.get("adapters") is None else STACK[1:]
    dataset = _dataset(pairs_path)
    runtime = pick_runtime(False)
    log.info("IPO over %s + SFT adapter on %s, %d pairs", meta["base_model"], runtime.describe(), len(dataset))
    tok, model = load_causal_lm(meta["base_model"], runtime, adapter=adapter_paths(sft_dir, meta))
    tok.padding_side = "right"
    model.train()
    args = DPOConfig(output_dir=str(Path(out_dir).parent / ".ipo-work"), loss_type=["ipo"], beta=cfg.beta,
                     gradient_checkpointing=False,   # TRL's DPO default is on: slower; LoRA fits without
                     **trainer_args(cfg, runtime))
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tok,
                         peft_config=lora, callbacks=[_progress_callback(log_to_mlflow, mlflow_run_id)])
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)
    t0 = time.monotonic()
    result = trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    last = history[-1] if history else {}
    summary = {"train_loss": round(result.training_loss, 4), "train_seconds": round(time.monotonic() - t0, 1),
               "steps": trainer.state.global_step, "pairs": len(dataset), "runtime": runtime.describe()}
    for key in ("rewards/accuracies", "rewards/margins"):
        if key in last:
            summary[f"last_{key.replace('/', '_')}"] = round(float(last[key]), 4)
    rank = distributed.note_group(summary, trainer)
    if not rank.is_main:   # in a launched group, rank 0 writes the model dir
        return summary
    with atomic_path(out_dir, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        if STACK[0] in stack:
            sft_copy = tmp / STACK[0]
            sft_copy.mkdir()
            for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
                if (Path(sft_dir) / name).exists():
                    shutil.copy2(Path(sft_dir) / name, sft_copy / name)
        trainer.model.save_pretrained(tmp / STACK[1])
        tok.padding_side = "left"
        tok.save_pretrained(tmp)
        (tmp / ADAPTER_META).write_text(json.dumps(
            {"base_model": meta["base_model"], "prompt": meta["prompt"], "adapters": stack},
            indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(Path(out_dir).parent / ".ipo-work", ignore_errors=True)
    if rank.distributed:
        log.info("rank %d of %d wrote the model dir to %s", rank.rank, rank.world_size, out_dir)
    return summary


# ---------------------------------------------------------------- the dvc.yaml stage

def run(cfg: "Config") -> dict:
    """Stage `tagger_ipo`: IPO in its own MLflow run (left beside the model dir, which the
    preference evaluation and `tagger_ipo_register` join). Skipped, and recorded, when the
    configured backend does not use the SFT adapter (then there are no pairs either)."""
    import mlflow

    from ..core import tracking
    from ..core.io import read_json, write_json
    from . import paths

    c = cfg.tagger
    params = tracking.flatten("sft", c.sft) | tracking.flatten("pairs", c.pairs) | tracking.flatten("ipo", c.ipo)
    with tracking.stage_run(c.tracking.experiment, "train_ipo", cfg.profile, params) as run_id:
        pair_stats = read_json(paths.METRICS_PAIRS, "preference pair statistics")
        if not paths.uses_adapter(c.infer.backend):
            summary = record_skip(paths.IPO_DIR, "ipo", no_adapter(c.infer.backend))
        elif not pair_stats.get("pairs"):   # allowed only where tagger.pairs.min_pairs is 0
            summary = record_skip(paths.IPO_DIR, "ipo", "no preference pairs (metrics/pairs.json)")
        else:
            mlflow.log_metrics({f"pairs/{k}": v for k, v in pair_stats.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
            summary = train(c.ipo, paths.ADAPTER_DIR, paths.PAIRS, paths.IPO_DIR)
            mlflow.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
            mlflow.set_tag("runtime", summary["runtime"])
    tracking.write_run_ref(paths.IPO_RUN_FILE, run_id, c.tracking.experiment)
    write_json(paths.METRICS_IPO, summary)
    return summary
