"""Supervised fine-tuning of the keyword tagger: TRL SFTTrainer + a PEFT LoRA adapter.

The data is in TRL's conversational prompt/completion format, so the loss is computed on the
assistant's JSON answer only. On CUDA the base model loads in bf16 (or 4-bit NF4 = QLoRA when
bitsandbytes is installed and `load_in_4bit` is set); on CPU in bf16 only where the CPU has
native bf16, else fp32.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import json
import time
from pathlib import Path

from ..core import distributed
from ..core.errors import DataError, ModelError
from ..core.io import atomic_path, read_jsonl
from ..core.log import get_logger
from ..core.models import load_causal_lm, pick_runtime
from .config import DEFAULT_PROMPT, SFTConfig

if TYPE_CHECKING:
    from ..config import Config

ADAPTER_META = "tagger.json"  # beside the adapter: base model id and the prompt it was trained on
log = get_logger("train")


def _dataset(path: Path):
    from datasets import Dataset

    rows = read_jsonl(path)
    if not rows:
        raise DataError(f"{path}: no training examples")
    return Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])


def _progress_callback(log_to_mlflow: bool, mlflow_run_id: str | None = None):
    """Periodic progress lines and `train/*` metrics, from the main process only (in a launched
    group every rank gets the same, already gathered, logs). Metrics go to the active MLflow run,
    or to `mlflow_run_id` (a group's rank 0 logs into the stage process's run)."""
    from transformers import TrainerCallback

    class ProgressAndTracking(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kw):
            if not state.is_world_process_zero:
                return
            logs = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            rate = state.global_step / max(time.monotonic() - self.t0, 1e-9)
            log.info("step %d/%d  %.2f steps/s  %s", state.global_step, state.max_steps, rate,
                     "  ".join(f"{k} {v:.4g}" for k, v in logs.items()))
            if not log_to_mlflow:
                return
            import mlflow
            mlflow.log_metrics({f"train/{k}": v for k, v in logs.items()}, step=state.global_step,
                               run_id=mlflow_run_id)   # None: the active run

    return ProgressAndTracking()


def trainer_args(cfg, runtime) -> dict:
    """Training arguments that SFT and IPO share (`cfg` has epochs, max_steps, batch_size,
    grad_accum, learning_rate, max_length, seed)."""
    import torch

    return dict(
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        max_length=cfg.max_length,
        logging_steps=max(1, min(10, cfg.max_steps if cfg.max_steps > 0 else 10)),
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=cfg.seed,
        bf16=runtime.dtype == torch.bfloat16,
        use_cpu=runtime.device == "cpu",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,   # several processes (DDP): every LoRA weight takes part
        disable_tqdm=True,  # the callback prints periodic lines instead
    )


def train(cfg: SFTConfig, splits_dir: str | Path, out_dir: str | Path, log_to_mlflow: bool = True,
          prompt: str = DEFAULT_PROMPT, mlflow_run_id: str | None = None) -> dict:
    """Train a LoRA adapter and write it (plus tokenizer and tagger.json) to out_dir. `prompt` is
    the template the training data was written with; it is recorded for inference. With
    `cfg.processes` > 1 the training runs in a launched group (tagger.train_group)."""
    if distributed.should_launch(cfg.processes):
        from .train_group import launch
        return launch("sft", cfg, cfg.base_model, log_to_mlflow, splits_dir=Path(splits_dir),
                      out_dir=Path(out_dir), prompt=prompt)
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    splits_dir = Path(splits_dir)
    train_ds, val_ds = _dataset(splits_dir / "train.jsonl"), _dataset(splits_dir / "val.jsonl")
    runtime = pick_runtime(cfg.load_in_4bit)
    log.info("base %s on %s, %d examples", cfg.base_model, runtime.describe(), len(train_ds))
    tok, model = load_causal_lm(cfg.base_model, runtime)
    tok.padding_side = "right"  # training pads on the right; generation (inference) on the left
    model.train()
    if runtime.load_in_4bit:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model)

    args = SFTConfig(output_dir=str(Path(out_dir).parent / ".sft-work"),
                     per_device_eval_batch_size=cfg.batch_size, **trainer_args(cfg, runtime))
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                         processing_class=tok, peft_config=lora,
                         callbacks=[_progress_callback(log_to_mlflow, mlflow_run_id)])
    from transformers.trainer_callback import PrinterCallback
    trainer.remove_callback(PrinterCallback)  # our callback prints the same logs, once
    t0 = time.monotonic()
    result = trainer.train()
    val = trainer.evaluate()
    summary = {"train_loss": round(result.training_loss, 4), "val_loss": round(val["eval_loss"], 4),
               "train_seconds": round(time.monotonic() - t0, 1), "steps": trainer.state.global_step,
               "runtime": runtime.describe()}
    rank = distributed.note_group(summary, trainer)
    if not rank.is_main:   # in a launched group, rank 0 writes the adapter
        return summary
    with atomic_path(out_dir, is_dir=True) as tmp:
        trainer.model.save_pretrained(tmp)
        tok.padding_side = "left"
        tok.save_pretrained(tmp)
        (tmp / ADAPTER_META).write_text(json.dumps({"base_model": cfg.base_model, "prompt": prompt},
                                                   indent=2, ensure_ascii=False) + "\n")
    if rank.distributed:
        log.info("rank %d of %d wrote the adapter to %s", rank.rank, rank.world_size, out_dir)
    return summary


def adapter_meta(adapter_dir: str | Path) -> dict:
    """base_model and prompt of a trained model dir (the reference prompt for older adapters).
    A stacked dir (SFT + IPO) lists its adapters' sub-folders, in merge order, under "adapters";
    a plain SFT dir is its own one adapter."""
    path = Path(adapter_dir) / ADAPTER_META
    if not path.exists():
        raise ModelError(f"{adapter_dir}: no trained adapter ({ADAPTER_META} missing; run the SFT step)")
    meta = json.loads(path.read_text())
    meta.setdefault("prompt", DEFAULT_PROMPT)
    adapters = meta.get("adapters")
    if adapters is not None and not (isinstance(adapters, list) and all(isinstance(a, str) for a in adapters)):
        raise ModelError(f"{path}: \"adapters\" must be a list of sub-folder names, got {adapters!r}")
    missing = [a for a in adapters or [] if not (Path(adapter_dir) / a).is_dir()]
    if missing:
        raise ModelError(f"{adapter_dir}: adapter folder(s) {missing} listed in {ADAPTER_META} are missing")
    return meta


def adapter_paths(adapter_dir: str | Path, meta: dict) -> list[str]:
    """The adapter folders to merge, in order."""
    if meta.get("adapters") is None:
        return [str(adapter_dir)]
    return [str(Path(adapter_dir) / a) for a in meta["adapters"]]


def load_adapter(adapter_dir: str | Path, runtime=None):
    """(tokenizer, base model with the adapter(s) merged, metadata), ready for generation."""
    meta = adapter_meta(adapter_dir)
    tok, model = load_causal_lm(meta["base_model"], runtime, adapter=adapter_paths(adapter_dir, meta))
    return tok, model, meta


# ---------------------------------------------------------------- the dvc.yaml stage

def no_adapter(backend: str) -> str:
    return f"backend {backend} does not use the SFT adapter"


def record_skip(model_dir: str, step: str, reason: str) -> dict:
    """Nothing to train (e.g. a backend without an adapter): `skipped.json` as the stage's model
    dir, and a `<step>.skipped` tag on the active run."""
    import mlflow

    summary = {"skipped": reason}
    with atomic_path(model_dir, is_dir=True) as out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "skipped.json").write_text(json.dumps(summary) + "\n")
    mlflow.set_tag(f"{step}.skipped", summary["skipped"])
    return summary


def run(cfg: "Config") -> dict:
    """Stage `tagger_train`: LoRA SFT in an MLflow run; the run id is left beside the adapter.

    Only the llm backend uses the adapter: for any other backend the stage opens the run (which
    evaluation and registration join) and records that nothing was trained, instead of spending
    the better part of an hour on a model nobody serves."""
    import mlflow

    from ..core import tracking
    from ..core.io import write_json
    from . import paths
    from .synth import split_prompt

    c = cfg.tagger
    params = tracking.flatten("synth", c.synth) | tracking.flatten("sft", c.sft)
    with tracking.stage_run(c.tracking.experiment, "train_sft", cfg.profile, params) as run_id:
        if paths.model_dir(c.infer.backend) == paths.ADAPTER_DIR:   # llm or an llm variant
            summary = train(c.sft, paths.SFT_DIR, paths.ADAPTER_DIR, prompt=split_prompt(paths.SFT_DIR))
            mlflow.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
            mlflow.set_tag("runtime", summary["runtime"])
        else:
            summary = record_skip(paths.ADAPTER_DIR, "sft", no_adapter(c.infer.backend))
    tracking.write_run_ref(paths.RUN_FILE, run_id, c.tracking.experiment)
    write_json(paths.METRICS_TRAIN, summary)
    return summary
