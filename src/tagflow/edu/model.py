"""The one inference path of the edu family: text -> encoder embedding -> head -> `score`,
`int_score`. Embedding (the `edu_embed` stage, the speed benchmark) and scoring (evaluation, the
registered pyfunc, `tagflow edu predict`) all go through here, configured by the model card.

A model folder (`artifacts/edu/models/<setup>/`) holds `head.joblib` and `card.json`: the encoder
(id, prefix, max_seq_length), the runtime (torch, torch-compile or onnx-int8) and precision setting, the head and
its hyper-parameters, the training data and the code version. Loading reads the card alone, never params.yaml."""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from ..core.errors import ModelError
from .config import RUNTIMES
from .data import int_score

CARD, HEAD = "card.json", "head.joblib"


def use_bf16(setting: str, device: str) -> bool:
    """bf16 autocast: `on`, `off`, or `auto` = CUDA or a CPU with native bf16 (AVX512-BF16/AMX)."""
    if setting in ("on", "off"):
        return setting == "on"
    if device.startswith("cuda"):
        return True
    from ..core.models import cpu_has_native_bf16

    return cpu_has_native_bf16()


def precision(bf16: bool, runtime: str = "torch") -> str:
    """What computes the embeddings: torch in bf16 or fp32 (eager or compiled), or the int8 ONNX
    graph (edu.runtime)."""
    if runtime == "onnx-int8":
        return "onnx-int8"
    if runtime not in RUNTIMES:
        raise ModelError(f"unknown edu runtime {runtime!r}; expected {' | '.join(RUNTIMES)}")
    weights = "bf16-weights" if bf16 else "fp32"
    return f"{weights}-compiled" if runtime == "torch-compile" else weights


def encoder_key(spec: dict, bf16: bool, runtime: str = "torch") -> str:
    """Names an embedding cache: the encoder, its prefix, length and precision (runtime)."""
    fields = {"model": spec["model"], "prefix": spec.get("prefix", ""),
              "max_seq_length": spec.get("max_seq_length"), "precision": precision(bf16, runtime)}
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    name = spec["model"].split(":")[-1].split("/")[-1]
    return f"{name}-{digest}"


@functools.lru_cache(maxsize=4)
def _bf16_encoder(model_id: str):
    """A bf16 copy of the shared encoder (bf16 weights beat fp32 weights under bf16 autocast on
    CPUs with native bf16: benchmarks/edu_speed.py)."""
    import torch

    from ..core.encoders import load_encoder

    return copy.deepcopy(load_encoder(model_id)).to(torch.bfloat16)


def encode(spec: dict, texts: list[str], batch_size: int = 32, bf16: str = "auto",
           runtime: str = "torch") -> np.ndarray:
    """(len(texts), dim) float32 L2-normalized embeddings of `prefix + text`, truncated to
    `max_seq_length` tokens, similar lengths padded together (sorted by length). Runtime `torch`:
    sentence-transformers, with bf16 weights when `use_bf16`; `torch-compile`: the same weights
    compiled by inductor (edu/compiled.py); `onnx-int8`: the int8 ONNX graph of the same encoder
    (edu/runtime.py)."""
    import torch

    from ..core.encoders import embed, load_encoder

    precision(False, runtime)  # an unknown runtime fails here, before any loading
    if runtime != "torch":  # the graph runtimes tokenize, sort and batch themselves
        encoder = load_encoder(spec["model"], "cpu" if runtime == "onnx-int8" else None)
        length = int(spec.get("max_seq_length") or encoder.max_seq_length)
        texts = [spec.get("prefix", "") + t for t in texts]
        if runtime == "onnx-int8":
            from .runtime import encode_int8

            return _normalized(encode_int8(spec["model"], texts, length, batch_size))
        from .compiled import encode_compiled

        fast = use_bf16(bf16, str(encoder.device))
        return _normalized(encode_compiled(spec["model"], texts, length, batch_size, bf16=fast))
    encoder = load_encoder(spec["model"])
    if use_bf16(bf16, str(encoder.device)):
        encoder = _bf16_encoder(spec["model"])
    previous = encoder.max_seq_length
    if spec.get("max_seq_length"):
        encoder.max_seq_length = int(spec["max_seq_length"])
    try:
        with torch.inference_mode():
            vectors = embed(encoder, list(texts), batch_size=batch_size, prefix=spec.get("prefix", ""))
    finally:
        encoder.max_seq_length = previous  # the encoder is shared (core.encoders caches it)
    return _normalized(vectors)  # bf16 normalizes to ~1e-3


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class EduScorer:
    """A trained head over its encoder, as its card describes them."""

    def __init__(self, card: dict, head):
        self.card, self.head = card, head

    @classmethod
    def load(cls, folder: str | Path) -> "EduScorer":
        import joblib

        folder = Path(folder)
        if not (folder / CARD).is_file() or not (folder / HEAD).is_file():
            raise ModelError(f"{folder}: not an edu model folder (needs {CARD} and {HEAD}; "
                             "run the edu_train stage)")
        card = json.loads((folder / CARD).read_text())
        if card.get("family") != "edu":
            raise ModelError(f"{folder}: card is for family {card.get('family')!r}, not 'edu'")
        return cls(card, joblib.load(folder / HEAD))

    def score_vectors(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, int_score) per embedding row. The raw score is unclamped, as the references'."""
        scores = np.asarray(self.head.predict(np.asarray(vectors, dtype=np.float32)), dtype=float)
        return scores, int_score(scores)

    def embed(self, texts: list[str]) -> np.ndarray:
        return encode(self.card["encoder"], texts, batch_size=int(self.card.get("batch_size", 32)),
                      bf16=self.card.get("bf16", "auto"), runtime=self.card.get("runtime", "torch"))

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if not texts:
            return np.zeros(0), np.zeros(0, dtype=int)
        return self.score_vectors(self.embed(texts))
