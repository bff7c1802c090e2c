"""Stage `edu_register`: each setup named in `edu.registry.models` logged as a pyfunc (its head +
card) into the training run, registered under its own name, and gated on its own metrics
(`<setup>/<gate_metric>`, e.g. the val Spearman: the trivial baselines score 0 there)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from ..core import tracking
from ..core.io import read_json, write_json
from ..core.log import get_logger
from . import paths
from .model import CARD

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("edu_register")


def setup_metrics(metrics: dict, setup: str) -> dict[str, float]:
    """`<setup>/val/spearman_within` -> `val/spearman_within`: the numbers of one setup, as the gate reads them."""
    prefix = f"{setup}/"
    return {k.removeprefix(prefix): float(v) for k, v in metrics.items()
            if k.startswith(prefix) and isinstance(v, (int, float))}


def run(cfg: "Config") -> dict:
    import json

    import mlflow

    from ..core import registry
    from .artifact import log_edu

    c = cfg.edu
    metrics = read_json(paths.METRICS, "edu evaluation metrics")
    # the evaluation's run: the training run, or its own one when evaluation settings changed since
    run_id = tracking.read_run_id(paths.EVAL_RUN_FILE) or tracking.read_run_id(paths.RUN_FILE)
    decisions = {}
    with tracking.resume_run(c.tracking.experiment, run_id, cfg.profile) as active:
        mlflow.set_tags(tracking.dvc_hashes() | tracking.git_state())
        infos = {setup: log_edu(paths.model_dir(setup), f"edu-{setup}") for setup in c.registry.models}
    for setup, model_name in c.registry.models.items():
        card = json.loads((Path(paths.model_dir(setup)) / CARD).read_text())
        gate_cfg = SimpleNamespace(model_name=model_name, gate_metric=c.registry.gate_metric,
                                   gate_target=c.registry.gate_target)
        tags = {f"card.{k}": v[:5000] for k, v in tracking.flatten("", card).items()}
        decision = registry.register_and_gate(infos[setup].model_uri, active.info.run_id, gate_cfg,
                                              setup_metrics(metrics, setup), tags=tags)
        decisions[setup] = dataclasses.asdict(decision) | {"model_name": model_name}
        log.info("%s -> %s v%s: %s (%s)", setup, model_name, decision.version,
                 "promoted" if decision.promoted else "rejected", "; ".join(decision.reasons))
    report = {"run_id": active.info.run_id, "decisions": decisions}
    write_json(paths.REGISTRY_REPORT, report)
    return report
