"""Stage `edu_embed`: every page embedded once per encoder, cached by page id.

A cache folder per encoder key (`model.encoder_key`: encoder, prefix, length, precision) holds
`vectors.npy` (float32, L2-normalized) and `ids.json` (page ids, same order). A rerun embeds only
pages it has not seen (new annotations, a changed split draw costs nothing), and an interrupted
run loses at most the pages of its unfinished chunk: each chunk is saved as it completes. The
folder is a DVC output with `persist: true`, so DVC keeps it between runs."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.errors import DataError
from ..core.io import atomic_path, write_json
from ..core.log import Progress, get_logger
from .model import encode, encoder_key, use_bf16

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("edu_embed")
CHUNK = 256  # pages embedded between saves


def read_cache(folder: str | Path) -> tuple[list[str], np.ndarray | None]:
    folder = Path(folder)
    if not (folder / "ids.json").is_file() or not (folder / "vectors.npy").is_file():
        return [], None
    ids = json.loads((folder / "ids.json").read_text())
    vectors = np.load(folder / "vectors.npy")
    if len(ids) != len(vectors):  # torn cache (should not happen: saves are atomic): start over
        log.warning("%s: %d ids but %d vectors; recomputing", folder, len(ids), len(vectors))
        return [], None
    return ids, vectors


def _save(folder: Path, ids: list[str], vectors: np.ndarray) -> None:
    with atomic_path(folder, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        np.save(tmp / "vectors.npy", vectors.astype(np.float32))
        (tmp / "ids.json").write_text(json.dumps(ids))


def embed_pages(spec: dict, pages: pd.DataFrame, folder: str | Path, batch_size: int = 32,
                bf16: str = "auto", runtime: str = "torch") -> dict:
    """Bring the cache in `folder` up to date with `pages` (id, text); returns counts and speed."""
    folder = Path(folder)
    ids, vectors = read_cache(folder)
    known = set(ids)
    todo = pages[~pages["id"].isin(known)].drop_duplicates("id")
    progress = Progress("edu_embed", len(todo), unit="pages")
    started = time.monotonic()
    for start in range(0, len(todo), CHUNK):
        chunk = todo.iloc[start:start + CHUNK]
        new = encode(spec, chunk["text"].tolist(), batch_size=batch_size, bf16=bf16, runtime=runtime)
        vectors = new if vectors is None else np.concatenate([vectors, new])
        ids = ids + chunk["id"].tolist()
        _save(folder, ids, vectors)
        progress.update(start + len(chunk))
    progress.done()
    seconds = time.monotonic() - started
    return {"pages": len(pages), "embedded": len(todo), "reused": len(pages) - len(todo),
            "seconds": round(seconds, 2), "pages_per_s": round(len(todo) / seconds, 2) if len(todo) and seconds else None}


def cache_folder(spec: dict, bf16_setting: str, device: str | None = None, runtime: str = "torch") -> Path:
    from . import paths

    device = device or _device()
    return Path(paths.EMBED_DIR) / encoder_key(spec, use_bf16(bf16_setting, device), runtime)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def vectors_for(folder: str | Path, page_ids: list[str]) -> np.ndarray:
    """The cached vectors of `page_ids`, in that order; a page never embedded is an error."""
    ids, vectors = read_cache(folder)
    where = {pid: n for n, pid in enumerate(ids)}
    missing = [pid for pid in page_ids if pid not in where]
    if missing:
        raise DataError(f"{folder}: {len(missing)} pages have no cached embedding (e.g. {missing[0]}); "
                        "run the edu_embed stage")
    return vectors[[where[pid] for pid in page_ids]]


def sources_for(edu, encoder: str) -> set[str]:
    """The sources an encoder must embed: those its setups learn from or are tested on."""
    out: set[str] = set()
    for name, setup in edu.train.setups.items():
        if setup["encoder"] == encoder:
            out |= set(setup["train"])
            if name in edu.evaluate.cross_lingual:
                out.add(edu.evaluate.cross_lingual[name])
    return out


def run(cfg: "Config") -> dict:
    """Stage `edu_embed`: each configured encoder that a training setup uses, over all pages."""
    from . import paths
    from .data import load_table

    e = cfg.edu.embed
    table = load_table()
    metrics = {}
    for name, spec in e.encoders.items():
        sources = sources_for(cfg.edu, name)
        if not sources:
            continue
        folder = cache_folder(spec, e.bf16, runtime=e.runtime)
        log.info("encoder %s (%s) over %s -> %s", name, spec["model"], sorted(sources), folder)
        pages = table[table["source"].isin(sources)]
        stats = embed_pages(spec, pages[["id", "text"]], folder, e.batch_size, e.bf16, e.runtime)
        metrics |= {f"{name}/{k}": v for k, v in stats.items() if v is not None}
        metrics[f"{name}/cache"] = folder.name
    write_json(paths.METRICS_EMBED, metrics)
    return metrics
