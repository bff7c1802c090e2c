"""Handing memory that a batch of inference freed back to the system (glibc's `malloc_trim`).

Why: an encoder batch allocates tens to hundreds of MB of activations whose sizes change with
every batch (rows x tokens), on the caller's thread and on each encoder shard's pool thread
(backends/shards.py), each of which has its own glibc arena. glibc returns a freed block to the
system only when it is mmapped or at the top of its heap, and it raises its mmap threshold to the
size of every mmapped block freed (up to 32 MB), so after the first batches the activations come
from the arenas and what they free stays there, scattered between live blocks. The bytes in use
stay flat while the process's resident memory creeps up batch after batch (README, "Under load":
measured with benchmarks/tagging_memory.py). `malloc_trim(0)` gives the free pages of every arena
back (madvise), for ~30 ms per batch (measured at load 5) against the batch's seconds.
"""
from __future__ import annotations

import ctypes
import functools


@functools.cache
def _malloc_trim():
    try:
        fn = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):        # not glibc (musl, macOS): nothing to give back this way
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_freed_memory() -> bool:
    """Give the free pages of every malloc arena back to the system; True when any were."""
    trim = _malloc_trim()
    return bool(trim is not None and trim(0))
