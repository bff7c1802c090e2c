"""Stage `topics_register`: log the selected candidate with its card into the training run,
register a new version, and gate it: `gate_metric` (validation micro-F1 with tuned thresholds)
must meet its target and the champion's, and no `guard_metrics` (macro-F1) may regress."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import tracking
from ..core.io import read_json, write_json
from ..core.log import get_logger
from . import paths

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("topics.register")


def thresholds_source(candidate: str) -> str:
    return read_json(paths.thresholds_file(candidate), "topics thresholds").get("tuned_on", "validation")


def card(cfg: "Config", metrics: dict) -> dict:
    """What shapes the registered model's answers, and what it was measured at."""
    from .classifiers import META

    selected = metrics["selected"]
    meta = json.loads((Path(paths.model_dir(selected)) / META).read_text())
    data = read_json(paths.METRICS_DATA, "topics data statistics")
    headline = ("micro_f1", "macro_f1", "micro_f1_tuned", "macro_f1_tuned")
    return {
        "family": "topics",
        "classifier": {"kind": meta["kind"], **meta["params"]},
        "labels": meta["labels"],
        "label_set": cfg.topics.data.label_set,
        "thresholds": f"per class, tuned on {thresholds_source(selected)} (thresholds.json)",
        "data": {"corpus": "Reuters-21578 (ModApte)", "test_split": cfg.topics.data.test_split,
                 **{k: v for k, v in data.items() if k.endswith("_docs")}},
        "measured": {f"{split}/{k}": metrics[f"{split}/{k}"] for split in ("validation", "test")
                     for k in headline if f"{split}/{k}" in metrics},
        "code": tracking.code_version(),
        "profile": cfg.profile,
    }


def run(cfg: "Config") -> dict:
    import mlflow

    from ..core import registry
    from .artifact import log_topics_model

    t = cfg.topics
    metrics = read_json(paths.METRICS, "topics evaluation metrics")
    selected = metrics["selected"]
    the_card = card(cfg, metrics)
    run_id = tracking.read_run_id(paths.RUN_FILE)
    with tracking.resume_run(t.tracking.experiment, run_id, cfg.profile) as active:
        mlflow.set_tags(tracking.dvc_hashes() | tracking.git_state())
        if Path("dvc.lock").exists():
            mlflow.log_artifact("dvc.lock", "lineage")
        mlflow.log_dict(the_card, "model_card.json")
        info = log_topics_model(paths.model_dir(selected), paths.thresholds_file(selected), the_card)
    card_tags = {f"card.{k}": v[:5000] for k, v in tracking.flatten("", {
        key: value for key, value in the_card.items() if key != "labels"}).items()}
    numeric = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
               and "/" in k and not k.startswith(tuple(f"{c}/" for c in t.train.candidates))}
    decision = registry.register_and_gate(info.model_uri, active.info.run_id, t.registry, numeric,
                                          tags=card_tags)
    report = dataclasses.asdict(decision) | {"model_name": t.registry.model_name,
                                             "run_id": active.info.run_id, "selected": selected}
    write_json(paths.REGISTRY_REPORT, report)
    log.info("registry decision: %s", report)
    return report
