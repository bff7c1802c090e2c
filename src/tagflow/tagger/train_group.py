"""SFT and IPO in several processes (`tagger.sft.processes`, `tagger.ipo.processes` > 1).

The stage process calls `launch`: it keeps its MLflow run, its Prefect flow and its outputs'
bookkeeping, and starts `python -m tagflow.tagger.train_group <spec.json>` in a group through
`accelerate launch` (core.distributed). Every process of the group runs the same `train`
function (the Trainer wraps the model in DDP and splits the batches); rank 0 alone writes the
model dir (atomically), logs the per-step metrics to the stage's MLflow run (by id, the run stays
the stage's) and leaves the summary the stage process reads back. The other ranks write nothing."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from ..core import distributed
from ..core.log import configure, get_logger

MODULE = "tagflow.tagger.train_group"
log = get_logger("train_group")


def launch(step: str, cfg, base_model: str, log_to_mlflow: bool, **inputs) -> dict:
    """Run `<step>.train(cfg, **inputs)` (step sft or ipo) in `cfg.processes` processes; its summary."""
    import mlflow

    from ..core.models import resolve

    resolve(base_model)    # an embedded model is unpacked here, once, not by every rank at the same time
    run = mlflow.active_run() if log_to_mlflow else None
    spec = {"step": step, "config": dataclasses.asdict(cfg),
            "inputs": {k: str(v.resolve()) if isinstance(v, Path) else v for k, v in inputs.items()},
            "mlflow": {"tracking_uri": mlflow.get_tracking_uri(), "run_id": run.info.run_id} if run else None}
    out_dir = Path(inputs["out_dir"])
    return distributed.run_group(MODULE, spec, cfg.processes, out_dir.resolve().parent)


def main(argv: list[str] | None = None) -> int:
    configure()
    spec = distributed.read_spec(sys.argv[1:] if argv is None else argv)
    rank = distributed.current()
    tracking = spec.get("mlflow") or {}
    if tracking:
        os.environ["MLFLOW_TRACKING_URI"] = tracking["tracking_uri"]
    run_id = tracking.get("run_id") if rank.is_main else None   # the other ranks log nothing
    inputs = spec["inputs"]
    if spec["step"] == "sft":
        from . import sft
        from .config import SFTConfig
        summary = sft.train(SFTConfig(**spec["config"]), log_to_mlflow=run_id is not None,
                            mlflow_run_id=run_id, **inputs)
    elif spec["step"] == "ipo":
        from . import ipo
        from .config import IPOConfig
        summary = ipo.train(IPOConfig(**spec["config"]), log_to_mlflow=run_id is not None,
                            mlflow_run_id=run_id, **inputs)
    else:
        raise SystemExit(f"unknown training step {spec['step']!r}; expected sft or ipo")
    distributed.write_summary(spec, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
