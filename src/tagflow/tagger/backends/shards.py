"""Encoder forward passes in shards that run side by side, one torch thread each.

Why: a document is a handful of ~100-token windows, so each operation of the encoder is small,
and torch's own intra-op threads meet at a barrier after every one of them. On a machine shared
with other jobs a descheduled thread stalls each barrier: on the 2-core machine at load 8-10,
one English document embedded at 0.44 docs/s with 2 torch threads and at 1.2 with 1 thread
(README, "Under load"). Shards meet once per call instead: the windows are sorted by length,
cut into `threads` contiguous slices (more when a slice would exceed the batch size), and each
slice is an ordinary `encoder.encode` on a pool thread running torch with one thread. The
vectors equal one plain call's up to float rounding (only the padding of each batch differs).
"""
from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}
_warm: set[int] = set()        # encoders whose tokenizer settings are already in place


def shard_count() -> int:
    """Shards per call: the torch threads the caller would have used (OMP_NUM_THREADS,
    torch.set_num_threads); 1 means a plain call."""
    import torch

    return torch.get_num_threads()


def slices(lengths: list[int], threads: int, batch_size: int) -> list[list[int]]:
    """Indices of the texts per shard, longest texts first and neighbours in length together (so
    each shard pads little): a multiple of `threads` shards, none over `batch_size` texts."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if not order:
        return []
    count = min(len(order), threads * math.ceil(len(order) / (threads * batch_size)))
    size = math.ceil(len(order) / count)
    return [order[i:i + size] for i in range(0, len(order), size)]


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
    torch.get_num_threads()    # fixes this thread's setting now, before the global one is restored


def _pool(threads: int) -> ThreadPoolExecutor:
    """The shared pool of `threads` single-threaded workers. torch.set_num_threads also sets a
    process-wide default that threads starting later adopt, so every worker is started and fixed
    at one thread first, then the caller's own setting is put back."""
    import torch

    with _lock:
        if threads not in _pools:
            before = torch.get_num_threads()
            pool = ThreadPoolExecutor(threads, thread_name_prefix="encoder-shard", initializer=_one_thread)
            barrier = threading.Barrier(threads)
            list(pool.map(lambda _: barrier.wait(), range(threads)))   # all workers up and fixed
            torch.set_num_threads(before)
            _pools[threads] = pool
        return _pools[threads]


def embed_sharded(encoder, texts: list[str], batch_size: int, prefix: str = "") -> np.ndarray:
    """core.encoders.embed (rows L2-normalised, in the order of `texts`), computed in shards
    on CPU; a plain call on an accelerator, with one thread, or for a single text."""
    from ...core.encoders import embed

    threads = shard_count()
    if threads <= 1 or len(texts) < 2 or encoder.device.type != "cpu" or id(encoder) not in _warm:
        vectors = embed(encoder, texts, batch_size, prefix)
        _warm.add(id(encoder))     # the tokenizer is set up (a concurrent first call could clash)
        return vectors
    parts = slices([len(t) for t in texts], threads, batch_size)
    results = list(_pool(threads).map(lambda part: embed(encoder, [texts[i] for i in part], batch_size, prefix),
                                      parts))
    out = np.empty((len(texts), results[0].shape[1]), dtype=np.float32)
    for part, vectors in zip(parts, results):
        out[part] = vectors
    return out
