"""Memory of a process that tags like the service does: leak, or the allocator keeping freed memory?

    python benchmarks/tagging_memory.py --fitted DIR --concepts concepts.parquet --rounds 8
    python benchmarks/tagging_memory.py --fitted DIR --concepts concepts.parquet --variants plain,trim,mmap

params.yaml's tagger.infer (today `route`), fitted in --fitted over --concepts (serve_load.py's
scratch folder has both: backend/ and concepts.parquet), tags the development documents as the
service's queue would: on one long-lived `inference` thread (the encoder shards on their pool
threads), in batches of 1-8 random documents (seeded). After every round of --batches batches,
one line: the process's RSS; glibc's own account of the heap (mallinfo2: bytes in use by
allocations, bytes freed but kept in its arenas, bytes in mmapped blocks); Python's allocations
(tracemalloc, --tracemalloc: slower) and the number of objects gc tracks. A leak grows the bytes
in use (and, in Python, the traced bytes or objects); an allocator that keeps what was freed
grows the RSS and the free bytes while the bytes in use stay flat. (The free bytes count freed
blocks whether or not their pages went back to the system: after a trim they stay, the RSS drops.)
With --variants, the trim's own time per batch (mean, max) is reported too.

Variants, each a fresh process, run in turn (--variants, --repeat alternates them):
  trim    as the code stands: Tagger.tag_many gives freed memory back after each batch (core/memory.py)
  notrim  without that (--no-trim)
  mmap    without it, with MALLOC_MMAP_THRESHOLD_=131072: glibc's fixed mmap threshold (blocks of
          128 KiB and more mmapped of their own, given back at free)
  arena2  without it, with MALLOC_ARENA_MAX=2
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

VARIANTS = {"trim": ([], {}), "notrim": (["--no-trim"], {}),       # name: (arguments, environment)
            "mmap": (["--no-trim"], {"MALLOC_MMAP_THRESHOLD_": "131072"}),
            "arena2": (["--no-trim"], {"MALLOC_ARENA_MAX": "2"})}


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def heap_mb() -> dict:
    """glibc's account over all arenas: in use (allocations alive, mmapped ones included), free
    (freed but kept in the arenas), mmapped (blocks of their own, given back at free)."""
    try:
        fn = ctypes.CDLL(None).mallinfo2
    except AttributeError:
        return {}
    fn.restype = _Mallinfo2
    info = fn()
    return {"in_use": round((info.uordblks + info.hblkhd) / 2**20, 1), "free_kept": round(info.fordblks / 2**20, 1),
            "mmapped": round(info.hblkhd / 2**20, 1)}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def run_one(args) -> None:
    """One variant in this process: one JSON line per round on stdout."""
    import tracemalloc

    from tagflow.config import load_config
    from tagflow.core import memory
    from tagflow.tagger.evaluate import load_dev_set
    from tagflow.tagger.pipeline import Tagger
    from tagflow.thesaurus import Thesaurus

    trims = []                       # seconds of each trim (the library's own call, timed)
    if args.no_trim:
        memory.release_freed_memory = lambda: False
    else:
        trim = memory.release_freed_memory

        def timed() -> bool:
            start = time.perf_counter()
            try:
                return trim()
            finally:
                trims.append(time.perf_counter() - start)
        memory.release_freed_memory = timed
    infer = load_config(ROOT / "params.yaml", "cpu").tagger.infer
    if args.backend:                 # one member of the route (its own folder as --fitted)
        infer.backend = args.backend
    th = Thesaurus.load(args.concepts)
    texts = [r["text"] for r in load_dev_set(ROOT / "devsets/tagger")]
    pool = ThreadPoolExecutor(1, thread_name_prefix="inference")     # the service's queue thread
    tagger = pool.submit(Tagger.build, infer, th, args.fitted).result()
    pool.submit(tagger.tag_many, texts[:2]).result()                  # warm-up: the shard pool, first calls
    if args.tracemalloc:
        tracemalloc.start()
    rng = random.Random(args.seed)

    def line(round_: int, docs: int, seconds: float) -> None:
        gc.collect()
        row = {"round": round_, "docs": docs, "seconds": round(seconds, 1), "rss_mb": rss_mb(), **heap_mb(),
               "gc_objects": len(gc.get_objects()), "load": round(os.getloadavg()[0], 1)}
        if trims:
            row["trim_ms_max"] = round(1000 * max(trims), 1)
            row["trim_ms_mean"] = round(1000 * statistics.mean(trims), 1)
        if args.tracemalloc:
            row["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 1)
        print(json.dumps(row), flush=True)

    line(0, 0, 0)
    for r in range(1, args.rounds + 1):
        start, docs = time.monotonic(), 0
        for _ in range(args.batches):
            batch = rng.sample(texts, rng.randint(1, args.batch))
            pool.submit(tagger.tag_many, batch).result()
            docs += len(batch)
        line(r, docs, time.monotonic() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fitted", type=Path, required=True, help="the fitted backend directory")
    ap.add_argument("--concepts", type=Path, required=True, help="the concept table it was fitted over")
    ap.add_argument("--backend", default=None, help="another backend of tagger.infer (e.g. a route member)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batches", type=int, default=6, help="batches per round")
    ap.add_argument("--batch", type=int, default=8, help="largest batch (documents)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--no-trim", action="store_true", help="without the library's trim after each batch")
    ap.add_argument("--variants", default=None, help=f"comma-separated, of {sorted(VARIANTS)}: each in a fresh process")
    ap.add_argument("--repeat", type=int, default=1, help="alternate the variants this many times")
    ap.add_argument("--out", type=Path, default=None, help="--variants: also write every line as JSON here")
    args = ap.parse_args()
    if not args.variants:
        return run_one(args)
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        sys.exit(f"--variants: unknown {unknown}; known: {sorted(VARIANTS)}")
    own = ["--fitted", str(args.fitted), "--concepts", str(args.concepts), "--rounds", str(args.rounds),
           "--batches", str(args.batches), "--batch", str(args.batch), "--seed", str(args.seed)]
    own += ["--tracemalloc"] if args.tracemalloc else []
    own += ["--backend", args.backend] if args.backend else []
    results = []
    for rep in range(1, args.repeat + 1):
        for name in names:
            extra, env = VARIANTS[name]
            done = subprocess.run([sys.executable, __file__, *own, *extra], env={**os.environ, **env},
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"variant {name} failed:\n{done.stderr[-3000:]}")
            rows = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
            results.append({"variant": name, "repeat": rep, "rows": rows})
            print(f"{name} #{rep}: rss " + ", ".join(str(r["rss_mb"]) for r in rows)
                  + " MB; in use " + ", ".join(str(r.get("in_use")) for r in rows)
                  + "; free kept " + ", ".join(str(r.get("free_kept")) for r in rows)
                  + f"; s/round {statistics.median(r['seconds'] for r in rows[1:]):.1f}"
                  + (f"; trim {rows[-1]['trim_ms_mean']} ms mean, {rows[-1]['trim_ms_max']} max"
                     if "trim_ms_max" in rows[-1] else "")
                  + f"; load {rows[0]['load']}-{rows[-1]['load']}", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
