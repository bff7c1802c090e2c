"""Evaluate a tagger on a split: the same Tagger the service runs, scored by concept URI."""
from __future__ import annotations

from pathlib import Path

from .metrics import output_quality, tagging_scores
from .progress import Progress
from .tagger import Tagger


def evaluate(tagger: Tagger, rows: list[dict], batch_docs: int = 8) -> tuple[dict, list[dict]]:
    progress = Progress("evaluate", len(rows), unit="docs")
    results = []
    for i in range(0, len(rows), batch_docs):
        results += tagger.tag_many([r["text"] for r in rows[i:i + batch_docs]])
        progress.update(len(results))
    progress.done()
    preds = [[k.uri for k in res.keywords] for res in results]
    metrics = tagging_scores([r["uris"] for r in rows], preds)
    metrics |= output_quality([r.valid_json for r in results], sum(r.emitted for r in results),
                              sum(len(r.out_of_thesaurus) for r in results),
                              sum(r.duplicates for r in results))
    metrics = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    predictions = [{"id": r["id"], "gold": r["uris"], "gold_labels": r["labels"],
                    "predicted": [k.as_dict() for k in res.keywords], "raw": res.raw_outputs,
                    "valid_json": res.valid_json, "out_of_thesaurus": res.out_of_thesaurus}
                   for r, res in zip(rows, results)]
    return metrics, predictions


def load_split(splits_dir: str | Path, split: str) -> list[dict]:
    from .io import read_jsonl

    path = Path(splits_dir) / f"{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path}: split {split!r} not found (run the synth stage)")
    return read_jsonl(path)
