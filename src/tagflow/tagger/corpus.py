"""Tagging a corpus: a JSONL file of {"id", "text", optional "title"} documents in, one JSONL line of ranked
concepts per document out (`{"id", "concepts", "model"}`), in batches that can run on many
workers (flows/corpus.py puts them on a Dask cluster).

Resumable: each finished batch is appended to the output and flushed to disk, so a run that is
killed keeps every finished batch; the next run reads the ids already in the output and tags only
the rest. A line torn by the kill (no newline at the end) is cut off first."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..core.errors import DataError
from .text import with_title

_LOADED: dict[str, object] = {}   # model URI -> loaded pyfunc, once per worker process


def _read_done(output: Path) -> set[str]:
    """Ids already tagged; a torn last line is removed from the file."""
    if not output.exists():
        return set()
    raw = output.read_bytes()
    keep = raw[: raw.rfind(b"\n") + 1]          # everything up to the last complete line
    if len(keep) != len(raw):
        with output.open("r+b") as fh:
            fh.truncate(len(keep))
    done = set()
    for number, line in enumerate(keep.decode("utf-8").splitlines(), 1):
        try:
            done.add(str(json.loads(line)["id"]))
        except (ValueError, KeyError, TypeError):
            raise DataError(f"{output}:{number}: not a line this command wrote; move the file away "
                            "or pick another output") from None
    return done


def read_corpus(path: str | Path) -> list[dict]:
    """The documents of a JSONL corpus, checked: every line an object with an id and a non-empty
    text; a document's title, when it has one, is read as its first paragraph (text.with_title)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    docs, seen = [], set()
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise DataError(f"{path}:{number}: not a JSON line") from None
            if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("text"), str) \
                    or not row["text"].strip() or not isinstance(row.get("title", ""), str):
                raise DataError(f"{path}:{number}: expected an object with an \"id\", a non-empty \"text\" "
                                f"and optionally a \"title\" string")
            key = str(row["id"])
            if key in seen:
                raise DataError(f"{path}:{number}: id {key!r} appears twice")
            seen.add(key)
            docs.append({"id": row["id"], "text": with_title(row["text"], row.get("title"))})
    return docs


def pending(input_path: str | Path, output_path: str | Path) -> tuple[list[dict], int]:
    """(documents still to tag, documents already in the output)."""
    docs = read_corpus(input_path)
    done = _read_done(Path(output_path))
    return [d for d in docs if str(d["id"]) not in done], len(done)


def batches(docs: list[dict], size: int) -> list[list[dict]]:
    if size < 1:
        raise DataError(f"batch size must be at least 1, got {size}")
    return [docs[i:i + size] for i in range(0, len(docs), size)]


def tag_batch(model_uri: str, docs: list[dict], params: dict, threads: int | None = None) -> list[dict]:
    """Output lines for one batch, from the registered model at `model_uri` (loaded once per process)."""
    import mlflow.pyfunc
    import pandas as pd

    if threads:
        import torch
        torch.set_num_threads(threads)   # workers share the machine's cores instead of oversubscribing
    if model_uri not in _LOADED:
        _LOADED[model_uri] = mlflow.pyfunc.load_model(model_uri)
    model = _LOADED[model_uri]
    results = model.predict(pd.DataFrame({"text": [d["text"] for d in docs]}), params=params or None)
    name, _, version = model_uri.removeprefix("models:/").rpartition("/")
    return [{"id": d["id"], "concepts": list(concepts), "model": {"name": name, "version": version}}
            for d, concepts in zip(docs, results)]


def append(output_path: str | Path, rows: list[dict]) -> None:
    """Append whole lines and flush them to disk (the resume point)."""
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
