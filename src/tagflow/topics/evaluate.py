"""Stage `topics_evaluate`: score every trained candidate on validation (and on the test split
when there is one) at 0.5 and at per-class thresholds, pick the candidate to register.

Per candidate and split: micro/macro F1 at 0.5 and with the tuned thresholds, 95% bootstrap CIs
over documents, the same on the 10 most frequent topics (`top10/...`), a per-class report and
JSONL predictions (through `inference.TopicPredictor`, the served code path). Thresholds come
from the training split's cross-validated scores when training saved them (`threshold_folds`;
validation is then unseen and scored with them directly), else they are tuned on validation and
the validation figures are cross-fitted (tuned on one half, scored on the other); on test the
final thresholds are used.
metrics/topics.json holds the selected candidate's metrics plus `<candidate>/<metric>` for all.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core import tracking
from ..core.io import read_json, write_json, write_jsonl
from ..core.log import get_logger
from . import metrics as M
from . import paths

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("topics.evaluate")


def score_split(Y, S, P_tuned, labels, top10, prefix: str, n_boot: int, seed: int) -> dict[str, float]:
    """Figures at 0.5 and at the tuned thresholds (`..._tuned`), with 95% bootstrap CIs, on all
    labels and on the top 10 (`top10/...`)."""
    out: dict[str, float] = {f"{prefix}/docs": float(len(Y))}
    for name, P in (("", S >= 0.5), ("_tuned", P_tuned)):
        for scope, (Ys, Ps) in (("", (Y, P)), ("top10/", M.subset(Y, P, labels, top10))):
            head = f"{scope}{prefix}/"
            out |= {f"{head}{key}{name}": float(value) for key, value in M.f1_scores(Ys, Ps).items()}
            for metric, (lo, hi) in M.bootstrap_ci(Ys, Ps, n_boot, seed).items():
                out[f"{head}{metric}{name}_ci_low"], out[f"{head}{metric}{name}_ci_high"] = lo, hi
    return out


def evaluate_candidate(kind: str, table, info: dict, n_boot: int, seed: int) -> dict:
    """Metrics of one trained candidate; writes its thresholds, per-class report and predictions."""
    from .classifiers import load_classifier
    from .data import label_matrix, texts_of
    from .inference import TopicPredictor, read_thresholds

    labels, top10 = info["labels"], info["top10"]
    clf = load_classifier(paths.model_dir(kind))
    val = table[table["split"] == "validation"]
    Yv, Sv = label_matrix(val["labels"], labels), clf.scores(texts_of(val))
    cv_file = Path(paths.cv_thresholds_file(kind))
    if cv_file.exists():   # tuned on the training split's CV scores: validation is unseen
        tuned = read_json(cv_file, f"{kind} cross-validated thresholds")
        thresholds = read_thresholds(cv_file, labels)
        P_val = Sv >= thresholds
    else:                  # tuned on validation: scored there only cross-fitted
        thresholds = M.tune_thresholds(Yv, Sv)
        tuned = {"labels": labels, "thresholds": dict(zip(labels, thresholds.tolist())),
                 "tuned_on": "validation", "docs": int(len(val))}
        P_val = M.crossfit_predictions(Yv, Sv, seed)
    predictor = TopicPredictor(clf, thresholds)
    write_json(paths.thresholds_file(kind), tuned)
    metrics = score_split(Yv, Sv, P_val, labels, top10, "validation", n_boot, seed)
    rows, reports = [], {"validation": M.per_class(Yv, predictor.decide(Sv), labels, thresholds)}
    parts = [("validation", val, Sv)]
    test = table[table["split"] == "test"]
    if len(test):
        Yt, St = label_matrix(test["labels"], labels), clf.scores(texts_of(test))
        metrics |= score_split(Yt, St, predictor.decide(St), labels, top10, "test", n_boot, seed)
        reports["test"] = M.per_class(Yt, predictor.decide(St), labels, thresholds)
        parts.append(("test", test, St))
    for split, part, S in parts:
        for doc_id, gold, answer in zip(part["id"], part["labels"], predictor.answers(S)):
            rows.append({"id": int(doc_id), "split": split, "gold": sorted(gold), **answer})
    write_jsonl(f"{paths.EVAL_DIR}/{kind}/predictions.jsonl", rows)
    write_json(f"{paths.EVAL_DIR}/{kind}/per_class.json", reports)
    return metrics


def select(candidates: dict[str, dict], metric: str) -> str:
    from ..core.errors import ConfigError
    from ..core.gate import HIGHER, direction

    missing = [kind for kind, m in candidates.items() if metric not in m]
    if missing:
        raise ConfigError(f"topics.evaluate.select_metric {metric!r} is not among the metrics of {missing}")
    sign = 1 if direction(metric) == HIGHER else -1
    return max(candidates, key=lambda kind: sign * candidates[kind][metric])  # ties: first listed


def run(cfg: "Config") -> dict:
    import mlflow

    from .data import read_table

    t = cfg.topics
    table, info = read_table()
    per_candidate = {}
    for kind in t.train.candidates:
        metrics = evaluate_candidate(kind, table, info, t.evaluate.bootstrap, t.data.seed)
        per_candidate[kind] = metrics
        log.info("%s: validation micro-F1 %.4f / tuned %.4f, macro-F1 %.4f / tuned %.4f", kind,
                 metrics["validation/micro_f1"], metrics["validation/micro_f1_tuned"],
                 metrics["validation/macro_f1"], metrics["validation/macro_f1_tuned"])
    selected = select(per_candidate, t.evaluate.select_metric)
    out: dict = {"selected": selected, **per_candidate[selected]}
    for kind, metrics in per_candidate.items():
        out |= {f"{kind}/{k}": v for k, v in metrics.items()}
    run_id = tracking.read_run_id(paths.RUN_FILE)
    with tracking.resume_run(t.tracking.experiment, run_id, cfg.profile):
        mlflow.log_metrics({k: float(v) for k, v in out.items()
                            if isinstance(v, float)})
        mlflow.set_tag("topics.selected", selected)
        for kind in per_candidate:
            mlflow.log_artifact(f"{paths.EVAL_DIR}/{kind}/per_class.json", f"eval/{kind}")
    write_json(paths.METRICS, out)
    log.info("selected candidate: %s (%s)", selected, t.evaluate.select_metric)
    return out
