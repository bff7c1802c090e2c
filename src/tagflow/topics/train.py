"""Stage `topics_train`: fit every candidate in `topics.train.candidates` on the training split
(the transformer stops early on validation micro-F1), save each under artifacts/topics/models/,
and record time and peak memory in one MLflow run that evaluation and registration join.
A candidate with `threshold_folds` >= 2 also gets per-class thresholds tuned on cross-validated
scores over the training split (topics/thresholds.py), saved beside it; evaluation uses them."""
from __future__ import annotations

import dataclasses
import json
import resource
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import tracking
from ..core.io import atomic_path, write_json
from ..core.log import get_logger
from . import paths

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("topics.train")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1 << 20) if sys.platform == "darwin" else peak / 1024, 1)


def candidate_params(cfg: "Config", kind: str) -> tuple[dict, int]:
    """(the classifier's parameters, threshold_folds): the folds shape the thresholds, not the
    classifier, so they stay out of its saved metadata."""
    params = dataclasses.asdict(getattr(cfg.topics.train, kind))
    return params, int(params.pop("threshold_folds", 0))


def run(cfg: "Config") -> dict:
    import mlflow

    from .classifiers import make_classifier
    from .config import check
    from .data import label_matrix, read_table, texts_of
    from .thresholds import cv_thresholds

    check(cfg.topics)
    t = cfg.topics
    table, info = read_table(("train", "validation"))
    train, val = table[table["split"] == "train"], table[table["split"] == "validation"]
    labels = info["labels"]
    X, Y = texts_of(train), label_matrix(train["labels"], labels)
    Xv, Yv = texts_of(val), label_matrix(val["labels"], labels)
    params = tracking.flatten("topics", {"data": dataclasses.asdict(t.data), "train": dataclasses.asdict(t.train)})
    report: dict = {"train_docs": len(X), "validation_docs": len(Xv), "labels": len(labels), "candidates": {}}
    with atomic_path(paths.MODELS_DIR, is_dir=True) as out, \
            tracking.stage_run(t.tracking.experiment, "topics_train", cfg.profile, params) as run_id:
        out.mkdir(parents=True, exist_ok=True)
        for kind in t.train.candidates:
            log.info("training %s on %d documents, %d labels", kind, len(X), len(labels))
            started = time.monotonic()
            clf_params, folds = candidate_params(cfg, kind)
            clf = make_classifier(kind, labels, clf_params)
            fit_info = clf.fit(X, Y, Xv, Yv)
            clf.save(out / kind)
            if folds:
                cv = cv_thresholds(lambda: make_classifier(kind, labels, clf_params), labels, X, Y, folds,
                                   t.data.seed)
                write_json(out / kind / paths.CV_THRESHOLDS, cv)
                fit_info |= {f"cv_{k}": v for k, v in cv.items() if k.startswith(("oof_", "labels_not"))}
            seconds = round(time.monotonic() - started, 1)
            entry = {"train_seconds": seconds, "peak_rss_mb": peak_rss_mb(), **fit_info}
            report["candidates"][kind] = entry
            mlflow.log_metrics({f"{kind}/{k}": float(v) for k, v in entry.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool)})
            mlflow.log_dict(entry, f"train/{kind}.json")
            log.info("%s: %s", kind, json.dumps({k: v for k, v in entry.items() if k != "history"}))
        tracking.write_run_ref(Path(out) / "run.json", run_id, t.tracking.experiment)
    write_json(paths.METRICS_TRAIN, report)
    return report
