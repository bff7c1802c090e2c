"""The encoder compiled by torch.compile (runtime `torch-compile`): bf16 weights (where the
device has native bf16, as runtime `torch`), SDPA attention, and inductor with `freezing`, so the
weights become constants that oneDNN prepacks and each linear layer runs with its bias and GELU
fused (the eager bf16 path spent about half its time copying biases, in GELU, adds and layer norms:
benchmarks/edu_speed.py, README "Speed").

One graph with dynamic batch and length dimensions serves every batch (pages sorted by length and
padded per batch, as the other runtimes). A batch of one page is padded to two rows: torch.compile
specialises a dimension of size 1, and a second compilation would cost more than the extra row.
Compiling happens on the first call in a process (about a minute on two cores; inductor's on-disk
cache makes later processes faster); calls are serialised by a lock, so a server's threads never
compile twice or interleave on the compiled graph."""
from __future__ import annotations

import functools
import threading

import numpy as np

from ..core.errors import ModelError
from ..core.log import get_logger

log = get_logger("edu_compiled")
_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def compiled_encoder(model_id: str, bf16: bool):
    """(compiled pooled transformer, tokenizer, device) for `model_id`."""
    import torch

    from ..core.encoders import load_encoder
    from .runtime import pooled_transformer

    encoder = load_encoder(model_id)
    module = pooled_transformer(encoder, "sdpa", torch.bfloat16 if bf16 else None)
    return (torch.compile(module, dynamic=True, options={"freezing": True}), encoder.tokenizer,
            encoder.device)


def encode_compiled(model_id: str, texts: list[str], max_seq_length: int, batch_size: int = 32,
                    bf16: bool = True) -> np.ndarray:
    """(len(texts), dim) float32 pooled embeddings (not normalized), pages sorted by token count
    and padded per batch."""
    import torch

    from .runtime import in_order, length_batches

    module, tokenizer, device = compiled_encoder(model_id, bf16)
    if not texts:
        return np.zeros((0, module.model.config.hidden_size), dtype=np.float32)

    def run(batch) -> np.ndarray:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        single = len(ids) == 1
        if single:
            ids, mask = ids.repeat(2, 1), mask.repeat(2, 1)
        vectors = module(ids.to(device), mask.to(device)).float().cpu().numpy()
        return vectors[:1] if single else vectors

    # Tokenized inside inference mode whatever the caller's mode: inference tensors and plain
    # ones pass different guards, and the second kind would compile the graph again.
    with _LOCK, torch.inference_mode():
        try:
            return in_order(len(texts), ((rows, run(batch)) for rows, batch in
                                         length_batches(tokenizer, texts, max_seq_length, batch_size, "pt")))
        except Exception as exc:  # no C++ compiler, an unsupported op: say what failed, once
            if "inductor" in type(exc).__module__ or "dynamo" in type(exc).__module__:
                raise ModelError(f"edu runtime torch-compile could not compile {model_id}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__} "
                                 "(needs a C++ compiler; or set edu.embed.runtime: torch)") from exc
            raise
