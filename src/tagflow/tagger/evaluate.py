"""Evaluate a tagger on a split: the same Tagger the service runs, scored by concept URI."""
from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path

from ..core.errors import DataError
from ..core.log import Progress
from .metrics import full_report, output_quality
from .pipeline import Tagger
from .text import with_title

if TYPE_CHECKING:
    from ..config import Config


def evaluate(tagger: Tagger, rows: list[dict], batch_docs: int = 8, titles: bool = True) -> tuple[dict, list[dict]]:
    """Metrics and per-document predictions; each document read with its title when it has one
    (`titles`; text.with_title), as a library's records would be tagged."""
    progress = Progress("evaluate", len(rows), unit="docs")
    results = []
    for i in range(0, len(rows), batch_docs):
        results += tagger.tag_many([with_title(r["text"], r.get("title") if titles else None)
                                    for r in rows[i:i + batch_docs]])
        progress.update(len(results))
    progress.done()
    preds = [[c.uri for c in res.concepts] for res in results]
    th = tagger.th
    langs = [r.get("lang") or "" for r in rows] if any(r.get("lang") for r in rows) else None
    metrics = full_report([r["uris"] for r in rows], preds, thesaurus=th, texts=[r["text"] for r in rows],
                          langs=langs, label_sets=[{u: th.all_labels(u) for u in r["uris"]} for r in rows])
    metrics |= output_quality([r.well_formed for r in results], sum(r.emitted for r in results),
                              sum(len(r.out_of_thesaurus) for r in results),
                              sum(r.duplicates for r in results))
    metrics = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    predictions = [{"id": r["id"], "gold": r["uris"], "gold_labels": r["labels"],
                    "predicted": [c.as_dict() for c in res.concepts], "raw": res.raw_outputs,
                    "valid_json": res.well_formed, "out_of_thesaurus": res.out_of_thesaurus}
                   for r, res in zip(rows, results)]
    return metrics, predictions


def load_split(splits_dir: str | Path, split: str) -> list[dict]:
    from ..core.io import read_jsonl

    path = Path(splits_dir) / f"{split}.jsonl"
    if not path.exists():
        raise DataError(f"{path}: split {split!r} not found (run the synth stage)")
    return read_jsonl(path)


# ---------------------------------------------------------------- the dvc.yaml stage

def load_tagger(cfg: "Config") -> Tagger:
    """The Tagger as params.yaml configures it, over this project's trained model."""
    from ..thesaurus import Thesaurus
    from . import paths

    infer = cfg.tagger.infer
    return Tagger.build(infer, Thesaurus.load(paths.CONCEPTS), paths.model_dir(infer.backend))


def load_dev_set(folder: str | Path) -> list[dict]:
    """The hand-indexed development set: every `*.jsonl` in `folder` (id, lang, text, uris, labels)."""
    from ..core.io import read_jsonl

    files = sorted(Path(folder).glob("*.jsonl"))
    if not files:
        raise DataError(f"{folder}: no *.jsonl development documents (tagger.evaluate.dev_set)")
    return [row for f in files for row in read_jsonl(f)]


def check_not_trained_on(backend, documents: list[dict], where: str) -> None:
    """Refuse to score a backend on documents it learned from (its F1 there would be inflated)."""
    seen = backend.training_ids() & {str(d.get("id")) for d in documents}
    if seen:
        raise DataError(f"{where}: {len(seen)} of its documents (e.g. {sorted(seen)[0]}) trained the "
                        f"{backend.name} backend; evaluate on other documents or train it on others")


def run(cfg: "Config") -> dict:
    """Stage `tagger_evaluate`: the configured split, scored; metrics into the training run."""
    import mlflow

    from ..core import tracking
    from ..core.io import write_json, write_jsonl
    from ..core.log import get_logger
    from . import paths

    c = cfg.tagger
    tagger = load_tagger(cfg)
    metrics, predictions = evaluate(tagger, load_split(paths.SFT_DIR, c.evaluate.split))
    if c.evaluate.dev_set:  # the honest figure: hand-indexed documents, never trained on
        dev = load_dev_set(c.evaluate.dev_set)
        check_not_trained_on(tagger.backend, dev, c.evaluate.dev_set)
        dev_metrics, dev_predictions = evaluate(tagger, dev)
        metrics |= {f"dev/{k}": v for k, v in dev_metrics.items()}
        if any(r.get("title") for r in dev):   # and without them: not every caller has titles
            untitled, _ = evaluate(tagger, dev, titles=False)
            metrics |= {f"dev/untitled_{k}": untitled[k] for k in ("f1_doc", "f1_doc_ci_low", "f1_doc_ci_high")}
    else:
        dev_predictions = []  # the stage's output exists either way (DVC tracks it)
    write_jsonl(paths.DEV_PREDICTIONS, dev_predictions)
    write_jsonl(paths.PREDICTIONS, predictions)
    write_json(paths.METRICS_TAGGER, metrics)
    params = tracking.flatten("infer", c.infer) | {"evaluate.split": c.evaluate.split}
    with tracking.evaluation_run(c.tracking.experiment, tracking.read_run_id(paths.RUN_FILE), cfg.profile,
                                 params, paths.EVAL_RUN_FILE):
        mlflow.log_metrics({f"{c.evaluate.split}/{k}": v for k, v in metrics.items() if "/" not in k}
                           | metrics)
        mlflow.log_artifact(paths.PREDICTIONS, "evaluation")
        if c.evaluate.dev_set:
            mlflow.log_artifact(paths.DEV_PREDICTIONS, "evaluation")
    get_logger("evaluate").info("%s metrics: %s", c.evaluate.split, metrics)
    return metrics
