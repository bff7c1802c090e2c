"""The `tagger_fit` stage: fit the configured backend (lexical scorer, embedding index, ensemble
weights) on the synthetic training split (validation split for ensemble weights) into
artifacts/backend. The llm backend learns in `tagger_train` instead; for it this stage records
that there is nothing to fit, so the stage graph is the same for every backend."""
from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from ..core.io import atomic_path, read_jsonl, write_json
from ..core.log import get_logger
from . import paths
from .backends.base import FIT_INFO

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("fit")


def run(cfg: "Config") -> dict:
    from ..thesaurus import Thesaurus
    from .backends import fit_backend, get_backend

    infer = cfg.tagger.infer
    cls = get_backend(infer.backend)
    with atomic_path(paths.BACKEND_DIR, is_dir=True) as out:
        out.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        if cls.needs_fit:
            train = read_jsonl(f"{paths.SFT_DIR}/train.jsonl")
            val = read_jsonl(f"{paths.SFT_DIR}/val.jsonl")
            log.info("fitting backend %s on %d training documents", infer.backend, len(train))
            summary = fit_backend(infer, Thesaurus.load(paths.CONCEPTS), train, val, out)
        else:
            summary = {"note": f"backend {infer.backend} learns in its own stage; nothing to fit"}
        summary = {"backend": infer.backend, "fit_seconds": round(time.monotonic() - start, 1), **summary}
        (out / FIT_INFO).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    write_json(paths.METRICS_FIT, {k: v for k, v in summary.items() if isinstance(v, (int, float, str))})
    log.info("fitted: %s", summary)
    return summary
