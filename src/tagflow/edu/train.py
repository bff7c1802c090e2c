"""Stage `edu_train`: per setup (an encoder and the annotation sets it learns from), every
candidate head fitted on the cached embeddings of the train split and scored on the val split;
the best by `edu.train.select_metric` is kept with its card. One MLflow run holds all setups."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.io import atomic_path, write_json
from ..core.log import get_logger
from . import heads
from .embed import cache_folder, vectors_for
from .metrics import point_metrics
from .model import CARD, HEAD, use_bf16

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("edu_train")


def setup_rows(table: pd.DataFrame, sources: list[str], split: str) -> pd.DataFrame:
    rows = table[table["source"].isin(sources) & (table["split"] == split)]
    if rows.empty:
        raise DataError(f"no {split} pages from {sources} in the annotation table")
    return rows


def choose_head(X_train, y_train, X_val, y_val, cfg, threshold: int = 3, val_groups=None):
    """(best (head, params, model), candidate results): every candidate fitted and scored on val
    (`val_groups`: the source of each val page, for `spearman_within`)."""
    results, best, best_value = [], None, -np.inf
    for head, params in heads.candidates(cfg.heads, cfg.ridge_alphas):
        started = time.monotonic()
        model = heads.fit(head, params, X_train, y_train, seed=cfg.seed, mlp_hidden=cfg.mlp_hidden)
        fit_s = time.monotonic() - started
        val = point_metrics(y_val, model.predict(X_val), threshold, val_groups)
        results.append({"head": head, "params": params, "fit_seconds": round(fit_s, 3),
                        **{f"val_{k}": round(v, 4) for k, v in val.items()}})
        value = val[cfg.select_metric]
        if value > best_value:  # first of equals wins (candidates list the reference first)
            best, best_value = (head, params, model), value
    return best, results


def train_setup(name: str, setup: dict, table: pd.DataFrame, cfg: "Config") -> dict:
    import joblib

    from ..core import tracking

    e, t = cfg.edu.embed, cfg.edu.train
    spec = e.encoders[setup["encoder"]]
    folder = cache_folder(spec, e.bf16, runtime=e.runtime)
    train, val = setup_rows(table, setup["train"], "train"), setup_rows(table, setup["train"], "val")
    X_train, X_val = vectors_for(folder, train["id"].tolist()), vectors_for(folder, val["id"].tolist())
    started = time.monotonic()
    (head, params, model), results = choose_head(X_train, train["score"].to_numpy(), X_val,
                                                  val["score"].to_numpy(), t, cfg.edu.evaluate.threshold,
                                                  val["source"].to_numpy())
    seconds = time.monotonic() - started
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    card = {
        "family": "edu", "setup": name,
        "encoder": {"name": setup["encoder"], "model": spec["model"], "prefix": spec.get("prefix", ""),
                    "max_seq_length": spec.get("max_seq_length")},
        "runtime": e.runtime,  # what computed the cache, so what serving must run
        "bf16": "on" if e.runtime != "onnx-int8" and use_bf16(e.bf16, device) else "off",
        "batch_size": e.batch_size,
        "head": {"kind": head, "params": params},
        "train": {"sources": list(setup["train"]), "pages": len(train), "val_pages": len(val),
                  "mean_score": float(train["score"].mean())},
        "select_metric": t.select_metric,
        "code": tracking.code_version(), "profile": cfg.profile,
    }
    with atomic_path(Path(_model_dir(name)), is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, tmp / HEAD)
        (tmp / CARD).write_text(json.dumps(card, indent=2, ensure_ascii=False))
        (tmp / "candidates.json").write_text(json.dumps(results, indent=2))
    best = next(r for r in results if r["head"] == head and r["params"] == params)
    log.info("%s: %s %s chosen (val %s %.3f) among %d candidates in %.1fs", name, head, params,
             t.select_metric, best[f"val_{t.select_metric}"], len(results), seconds)
    return {"head": f"{head}{params or ''}", "train_pages": len(train), "seconds": round(seconds, 2),
            "candidates": results}


def _model_dir(name: str) -> str:
    from . import paths
    return paths.model_dir(name)


def run(cfg: "Config") -> dict:
    import mlflow

    from ..core import tracking
    from . import paths
    from .data import load_table

    c = cfg.edu
    table = load_table()
    params = tracking.flatten("train", c.train) | tracking.flatten("embed", c.embed)
    summary: dict = {}
    with tracking.stage_run(c.tracking.experiment, "edu_train", cfg.profile, params) as run_id:
        for name, setup in c.train.setups.items():
            out = train_setup(name, setup, table, cfg)
            summary[name] = {k: v for k, v in out.items() if k != "candidates"}
            for cand in out["candidates"]:
                label = cand["head"] + "".join(f"_{k}{v:g}" for k, v in cand["params"].items())
                mlflow.log_metrics({f"{name}/candidates/{label}/{k}": v for k, v in cand.items()
                                    if k.startswith("val_") or k == "fit_seconds"})
            mlflow.log_metric(f"{name}/train_seconds", out["seconds"])
            mlflow.log_artifacts(_model_dir(name), f"models/{name}")
        tracking.write_run_ref(paths.RUN_FILE, run_id, c.tracking.experiment)
    metrics = {f"{name}/{k}": v for name, s in summary.items() for k, v in s.items()}
    write_json(paths.METRICS_TRAIN, metrics)
    return metrics
