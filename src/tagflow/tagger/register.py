"""The `tagger_register` stage: the model card (everything that shapes the tagger's output), the
pyfunc logged into the training run, a new registered version, and the gate's decision."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import tracking
from ..core.io import read_json, write_json
from ..core.log import get_logger
from . import paths

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("register")


def card(cfg: "Config", model_dir: str | None = None) -> dict:
    """The model card of what this project would register now (see tagger.artifact), for the
    configured backend's model dir or another one of the same backend (SFT+IPO)."""
    import pandas as pd

    from .artifact import file_sha256, model_card
    from .backends import get_backend

    infer = cfg.tagger.infer
    backend_info = get_backend(infer.backend).model_info(model_dir or paths.model_dir(infer.backend))
    dump = Path(cfg.thesaurus.dump)
    thesaurus = {"dump": dump.name, "sha256": file_sha256(dump) if dump.exists() else "unknown",
                 "concepts": len(pd.read_parquet(paths.CONCEPTS, columns=["uri"]))}
    return model_card(infer, backend_info, thesaurus, tracking.code_version(), cfg.profile)


def register(cfg: "Config", model_dir: str, metrics: dict, run_file: str, report_path: str,
             card_extra: dict | None = None) -> dict:
    """Log the model in `model_dir` with its card into the run named in `run_file`, register it
    as a new version and apply the gate against the champion; the decision goes to report_path."""
    import mlflow

    from ..core import registry
    from .artifact import log_tagger, requirements

    c = cfg.tagger
    the_card = card(cfg, model_dir) | (card_extra or {})
    run_id = tracking.read_run_id(run_file)
    with tracking.resume_run(c.tracking.experiment, run_id, cfg.profile) as active:
        mlflow.set_tags(tracking.dvc_hashes() | tracking.git_state())
        if Path("dvc.lock").exists():
            mlflow.log_artifact("dvc.lock", "lineage")
        mlflow.log_dict(the_card, "model_card.json")
        info = log_tagger(model_dir, paths.CONCEPTS, the_card, requirements(c.infer.backend))
    card_tags = {f"card.{k}": v for k, v in tracking.flatten("", the_card).items()}
    decision = registry.register_and_gate(info.model_uri, active.info.run_id, c.registry, metrics,
                                          tags={k: v[:5000] for k, v in card_tags.items()})
    report = dataclasses.asdict(decision) | {"model_name": c.registry.model_name, "run_id": active.info.run_id}
    write_json(report_path, report)
    log.info("registry decision: %s", report)
    return report


def run(cfg: "Config") -> dict:
    """Stage `tagger_register`: log the model with its card, register it, apply the gate."""
    c = cfg.tagger
    # the run that holds the evaluation: the training run, or the evaluation's own run when the
    # inference settings changed after training (tagger.evaluate)
    run_file = paths.EVAL_RUN_FILE if Path(paths.EVAL_RUN_FILE).exists() else paths.RUN_FILE
    return register(cfg, paths.model_dir(c.infer.backend), read_json(paths.METRICS_TAGGER, "evaluation metrics"),
                    run_file, paths.REGISTRY_REPORT)


def run_ipo(cfg: "Config") -> dict:
    """Stage `tagger_ipo_register`: SFT+IPO as a new version of the same model, behind the same
    gate (target met and the champion, normally the SFT model, not beaten). Skipped, and the skip
    recorded, when there is no SFT+IPO model."""
    metrics = read_json(paths.METRICS_TAGGER_IPO, "SFT+IPO evaluation metrics")
    if "skipped" in metrics:
        report = {"skipped": metrics["skipped"]}
        write_json(paths.IPO_REGISTRY_REPORT, report)
        return report
    from .ipo import STACK
    return register(cfg, paths.IPO_DIR, metrics, paths.IPO_RUN_FILE, paths.IPO_REGISTRY_REPORT,
                    card_extra={"adapters": STACK, "preference_tuning": "ipo"})
