"""The encoder as an int8 ONNX graph (runtime `onnx-int8`): exported once from the
sentence-transformers model, dynamically quantized with PER-CHANNEL int8 weights (per-tensor int8
lost too much: mean cosine to fp32 0.85 vs 0.98 for MiniLM), run by onnxruntime.

The graph holds the transformer and its pooling (mean or CLS, as the model's Pooling module says),
so a page costs one session call; normalization happens in numpy. Pages are sorted by token count
and padded per batch (length bucketing). Exports are cached under the tagflow cache
(`<cache>/onnx/<name>-<hash>/`), keyed by the encoder id, the sentence-transformers folder's
files and the export recipe, so a changed encoder is exported afresh.

onnx and onnxruntime are imported inside the functions: importing this module stays cheap."""
from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from ..core.errors import ModelError
from ..core.log import get_logger

log = get_logger("edu_runtime")
RECIPE = {"opset": 17, "quant": "dynamic-int8-per-channel", "graph": "pooled-eager-v2"}


def _pooling(encoder) -> str:
    """'mean' or 'cls': the pooling the exported graph must reproduce."""
    for module in encoder:
        mode = getattr(module, "pooling_mode", None)
        if mode is None and hasattr(module, "get_pooling_mode_str"):
            mode = module.get_pooling_mode_str()
        if mode is not None:
            if mode not in ("mean", "cls"):
                raise ModelError(f"onnx-int8 runtime: pooling {mode!r} is not supported (mean or cls)")
            return mode
    raise ModelError("onnx-int8 runtime: the encoder has no Pooling module")


def _export_key(model_id: str, path: str) -> str:
    files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else []
    stamp = [(str(p.relative_to(path)), p.stat().st_size) for p in files]
    blob = json.dumps({"model": model_id, "files": stamp, "recipe": RECIPE}, sort_keys=True)
    name = model_id.split(":")[-1].split("/")[-1]
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def pooled_transformer(encoder, attention: str, dtype=None):
    """A copy of the encoder's transformer with its pooling on top, as one module taking
    (input_ids, attention_mask): what the ONNX export and torch.compile turn into one graph."""
    import torch

    pooling = _pooling(encoder)
    transformer = copy.deepcopy(encoder[0].auto_model)
    if dtype is not None:
        transformer = transformer.to(dtype)
    transformer.set_attn_implementation(attention)

    class Pooled(torch.nn.Module):
        """Keyword arguments into the model (positional ones land on the wrong inputs), and the
        sentence-transformers pooling on top."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            if pooling == "cls":
                return hidden[:, 0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    return Pooled(transformer).eval()


def length_batches(tokenizer, texts: list[str], max_seq_length: int, batch_size: int, tensors: str):
    """(row numbers, tokenized batch) over `texts` longest first, each batch padded to its own
    longest page (length bucketing): similar lengths share a batch, so little padding is computed."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_seq_length)["input_ids"]]
    order = np.argsort(lengths, kind="stable")[::-1]
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        yield rows, tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=max_seq_length, return_tensors=tensors)


def in_order(n: int, batches) -> np.ndarray:
    """Stack (rows, vectors) pairs back into the callers' order as float32."""
    out: list[np.ndarray | None] = [None] * n
    for rows, vectors in batches:
        for i, vector in zip(rows, vectors):
            out[i] = vector
    return np.stack(out).astype(np.float32)


def export_int8(model_id: str, out: Path) -> Path:
    """Write `out/model.int8.onnx` (transformer + pooling, int8 per-channel weights)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..core.encoders import load_encoder
    from ..core.io import atomic_path

    encoder = load_encoder(model_id, "cpu")  # exported from CPU weights on any host
    pooling = _pooling(encoder)
    # A copy with eager attention: the SDPA path exports to a graph of mask-building ops that
    # onnxruntime ran 1.5x slower (MiniLM int8, 1 thread: 2.6x fp32 torch eager vs 1.7x sdpa).
    pooled = pooled_transformer(encoder, "eager")

    sample = encoder.tokenizer(["an example page", "a second, longer example page"], padding=True,
                               return_tensors="pt")
    with atomic_path(out, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        fp32 = tmp / "model.fp32.onnx"
        with torch.inference_mode():
            torch.onnx.export(pooled, (sample["input_ids"], sample["attention_mask"]),
                              str(fp32), input_names=["input_ids", "attention_mask"],
                              output_names=["embedding"], opset_version=RECIPE["opset"], dynamo=False,
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "embedding": {0: "batch"}})
        quantize_dynamic(str(fp32), str(tmp / "model.int8.onnx"), per_channel=True,
                         weight_type=QuantType.QInt8)
        fp32.unlink()
        (tmp / "export.json").write_text(json.dumps({"model": model_id, "pooling": pooling, **RECIPE}))
    return out / "model.int8.onnx"


@functools.lru_cache(maxsize=4)
def int8_session(model_id: str):
    """(onnxruntime session, tokenizer) for `model_id`, exported on first use."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ModelError("edu runtime onnx-int8 needs the packages onnx and onnxruntime "
                         "(infra/requirements); or set edu.embed.runtime: torch") from None
    from ..core.encoders import load_encoder, resolve_encoder
    from ..core.models import cache_dir

    folder = cache_dir() / "onnx" / _export_key(model_id, resolve_encoder(model_id))
    path = folder / "model.int8.onnx"
    if not path.is_file():
        log.info("exporting %s to int8 ONNX in %s (once)", model_id, folder)
        export_int8(model_id, folder)
    import torch

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # As many threads as torch uses, and no busy-waiting between operators: spinning threads
    # starve whatever else runs on the CPU (a server's request handling, other jobs).
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session, load_encoder(model_id, "cpu").tokenizer


def encode_int8(model_id: str, texts: list[str], max_seq_length: int, batch_size: int = 32) -> np.ndarray:
    """(len(texts), dim) float32 pooled embeddings (not normalized), pages sorted by token count
    and padded per batch."""
    session, tokenizer = int8_session(model_id)
    if not texts:
        return np.zeros((0, session.get_outputs()[0].shape[-1]), dtype=np.float32)
    batches = length_batches(tokenizer, texts, max_seq_length, batch_size, "np")
    return in_order(len(texts), ((rows, session.run(["embedding"], {
        "input_ids": batch["input_ids"].astype(np.int64),
        "attention_mask": batch["attention_mask"].astype(np.int64)})[0]) for rows, batch in batches))
