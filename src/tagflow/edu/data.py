"""Annotation sets -> one table: (id, text, language, score, annotator, source, split).

`fetch` obtains the raw CSVs into `edu.data.raw_dir` (an official URL when one is configured and
reachable, else the mirror: `../shared/data` in this project, like the thesaurus dump). `run` (stage
`edu_data`) reads them, normalizes each source into the common schema, merges duplicate pages
(the mean of their scores; a page found in two sources keeps its first), and draws
train/val/test splits per source, stratified by integer score, from `edu.data.seed`."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.io import atomic_path
from ..core.log import get_logger
from .config import SOURCES, DataConfig

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("edu_data")
COLUMNS = ["id", "text", "language", "score", "annotator", "source", "split"]
SPLITS = ("train", "val", "test")


def int_score(score) -> np.ndarray:
    """The references' integer class: round(clamp(score, 0, 5)) (Python's round: half to even)."""
    return np.round(np.clip(np.asarray(score, dtype=float), 0, 5)).astype(int)


def page_id(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# ---------------------------------------------------------------- fetch

def _csv_problem(path: Path) -> str | None:
    try:
        head = pd.read_csv(path, nrows=5)
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not our CSV"
        return f"not a CSV file ({type(exc).__name__}: {exc})"
    return None if "text" in head.columns else f"no 'text' column (columns: {list(head.columns)})"


def _download(url: str, dest: Path, timeout: float) -> None:
    import httpx

    with atomic_path(dest) as tmp:
        resp = httpx.get(url, timeout=timeout, follow_redirects=True)
        resp.raise_for_status()
        tmp.write_bytes(resp.content)
        problem = _csv_problem(tmp)
        if problem:
            raise DataError(f"{url}: {problem}")


def fetch(cfg: DataConfig, mirror: str | None = None, force: bool = False,
          timeout: float = 30.0) -> dict[str, str]:
    """Each configured source's CSV into raw_dir/<its mirror path>; returns source -> where from."""
    got: dict[str, str] = {}
    for source in cfg.sources:
        relative = SOURCES[source][0]
        dest = Path(cfg.raw_dir) / relative
        if dest.exists() and dest.stat().st_size > 0 and not force:
            got[source] = "present"
            continue
        errors = []
        url = cfg.urls.get(source)
        if url:
            try:
                _download(url, dest, timeout)
                got[source] = url
                continue
            except Exception as exc:  # network errors come in many types; all mean "try the mirror"
                errors.append(f"official URL {url}: {type(exc).__name__}: {exc}")
        else:
            errors.append("no official URL configured (edu.data.urls)")
        copy = Path(mirror) / relative if mirror else None
        if copy is not None and copy.is_file():
            problem = _csv_problem(copy)
            if problem:
                raise DataError(f"{copy}: {problem}")
            with atomic_path(dest) as tmp:
                shutil.copyfile(copy, tmp)
            got[source] = str(copy)
            log.info("%s: copied mirror %s -> %s", source, copy, dest)
            continue
        errors.append(f"mirror: {copy} not found" if copy else "no --mirror given")
        raise DataError(f"could not obtain annotation set {source!r}: " + "; ".join(errors))
    return got


# ---------------------------------------------------------------- normalize

def load_source(source: str, raw_dir: str | Path) -> pd.DataFrame:
    """One source's CSV in the common schema (without split), duplicates merged."""
    relative, language, annotator = SOURCES[source]
    path = Path(raw_dir) / relative
    if not path.is_file():
        raise DataError(f"{path}: annotation set {source!r} not found (run `tagflow edu fetch`)")
    try:
        raw = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"{path}: not a readable CSV ({type(exc).__name__}: {exc})") from exc
    score_col = "score" if "score" in raw.columns else "int_score"
    missing = [c for c in ("text", score_col) if c not in raw.columns]
    if missing or score_col not in raw.columns:
        raise DataError(f"{path}: needs columns text and score (or int_score); has {list(raw.columns)}")
    scores = pd.to_numeric(raw[score_col], errors="coerce")
    frame = pd.DataFrame({"text": raw["text"].astype("string").str.strip(), "score": scores})
    bad = frame["text"].isna() | (frame["text"] == "") | frame["score"].isna()
    if bad.any():
        log.warning("%s: dropped %d rows without text or score", source, int(bad.sum()))
        frame = frame[~bad]
    before = len(frame)
    frame = frame.groupby("text", sort=False, as_index=False)["score"].mean()  # same page, mean score
    if len(frame) < before:
        log.info("%s: merged %d duplicate pages (mean score)", source, before - len(frame))
    frame["id"] = frame["text"].map(page_id)
    frame["language"], frame["annotator"], frame["source"] = language, annotator, source
    return frame


def assign_splits(frame: pd.DataFrame, seed: int, val_fraction: float, test_fraction: float) -> pd.Series:
    """Per integer-score class: shuffled, then the first share to test, the next to val, the rest
    to train (a class of one page goes to train). Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    split = pd.Series("train", index=frame.index, dtype="object")
    classes = int_score(frame["score"].to_numpy())
    for cls in sorted(set(classes)):
        idx = frame.index[classes == cls].to_numpy()
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction)) if len(idx) > 1 else 0
        n_val = int(round(len(idx) * val_fraction)) if len(idx) > 2 else 0
        split.loc[idx[:n_test]] = "test"
        split.loc[idx[n_test:n_test + n_val]] = "val"
    return split


def build_table(cfg: DataConfig) -> pd.DataFrame:
    frames, seen = [], set()
    for n, source in enumerate(cfg.sources):
        frame = load_source(source, cfg.raw_dir)
        shared = frame["id"].isin(seen)
        if shared.any():
            log.warning("%s: dropped %d pages already in an earlier source", source, int(shared.sum()))
            frame = frame[~shared]
        if cfg.max_per_source and len(frame) > cfg.max_per_source:
            frame = frame.sample(n=cfg.max_per_source, random_state=cfg.seed)
        frame = frame.reset_index(drop=True)
        frame["split"] = assign_splits(frame, cfg.seed + n, cfg.val_fraction, cfg.test_fraction)
        seen |= set(frame["id"])
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    table["score"] = table["score"].astype(float)
    return table


def summary(table: pd.DataFrame) -> dict:
    out: dict = {"pages": len(table)}
    for (source, split), part in table.groupby(["source", "split"]):
        out[f"{source}/{split}/pages"] = len(part)
        out[f"{source}/{split}/mean_score"] = round(float(part["score"].mean()), 4)
    for source, part in table.groupby("source"):
        counts = pd.Series(int_score(part["score"])).value_counts().sort_index()
        for cls, count in counts.items():
            out[f"{source}/int_score_{cls}"] = int(count)
    return out


def load_table(path: str | Path | None = None) -> pd.DataFrame:
    from . import paths

    path = Path(path or paths.TABLE)
    if not path.exists():
        raise DataError(f"{path}: annotation table not found (run the edu_data stage)")
    return pd.read_parquet(path)


def run(cfg: "Config") -> dict:
    """Stage `edu_data`: the raw annotation sets -> the annotation table with splits."""
    from ..core.io import write_json
    from . import paths

    table = build_table(cfg.edu.data)
    with atomic_path(paths.TABLE) as tmp:
        table.to_parquet(tmp, index=False)
    metrics = summary(table)
    write_json(paths.METRICS_DATA, metrics)
    log.info("%d pages: %s", len(table), {k: v for k, v in metrics.items() if k.endswith("/pages")})
    return metrics


# ---------------------------------------------------------------- pages to score

def read_pages(path: str | Path) -> list[dict]:
    """Pages from a JSONL or CSV file with a `text` column (and optionally `id`; else the line or
    row number): [{"id", "text"}]. Anything else is a one-line DataError."""
    from ..core.io import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = read_jsonl(path)
    elif suffix == ".csv":
        try:
            rows = pd.read_csv(path, dtype={"id": str}, keep_default_na=False).to_dict("records")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"{path}: not a readable CSV ({type(exc).__name__}: {exc})") from exc
    else:
        raise DataError(f"{path}: expected a .jsonl or .csv file of pages with a 'text' column")
    pages = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise DataError(f"{path}: page {n} has no 'text' string")
        pid = row.get("id")
        pages.append({"id": str(pid) if pid not in (None, "") else str(n), "text": row["text"]})
    if not pages:
        raise DataError(f"{path}: no pages")
    ids = [p["id"] for p in pages]
    if len(set(ids)) < len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError(f"{path}: page id {dup!r} occurs more than once")
    return pages
