"""Tagging speed per backend on this machine: documents/s when all documents go through one
`tag_many` call (every chunk of every document batched) versus one document at a time, chunk
latency p50/p95 (one chunk per call), and the process's peak memory.

    python benchmarks/tagging_speed.py --project . --backends lexical embedding
    python benchmarks/tagging_speed.py --project . --backends llm      # needs artifacts/tagger

Documents: the hand-indexed development set (devsets/tagger). Fits lexical/embedding/ensemble
on the project's synthetic training split first (not timed). Prints one Markdown table.
"""
from __future__ import annotations

import argparse
import copy
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from compare_backends import load_project, trained_model_dir  # noqa: E402  (benchmarks/ is on sys.path as the script's folder)
from tagflow.tagger.backends import fit_backend, make_backend  # noqa: E402
from tagflow.tagger.evaluate import load_dev_set  # noqa: E402
from tagflow.tagger.pipeline import Tagger, chunk_text  # noqa: E402


def measure(tagger: Tagger, texts: list[str], repeats: int) -> dict:
    start = time.monotonic()
    tagger.tag_many(texts)
    batched = len(texts) / (time.monotonic() - start)
    start = time.monotonic()
    for text in texts:
        tagger.tag(text)
    single = len(texts) / (time.monotonic() - start)
    chunks = [c for t in texts for c in chunk_text(t, tagger.cfg.chunk_chars, tagger.cfg.chunk_overlap)]
    latencies = []
    for chunk in chunks[:repeats]:
        start = time.monotonic()
        tagger.backend.suggest([chunk])
        latencies.append(time.monotonic() - start)
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else latencies * 19
    return {"docs_per_s_batched": round(batched, 2), "docs_per_s_single": round(single, 2),
            "speedup": round(batched / single, 2), "chunk_p50_s": round(statistics.median(latencies), 4),
            "chunk_p95_s": round(q[18], 4), "chunks": len(chunks)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default=".")
    ap.add_argument("--backends", nargs="+", default=["lexical", "embedding"])
    ap.add_argument("--params", help="params.yaml to read tagger.infer from (default: the project's)")
    ap.add_argument("--docs", type=int, default=44, help="development documents used")
    ap.add_argument("--chunks", type=int, default=30, help="chunks timed one by one for latency")
    args = ap.parse_args()
    project = Path(args.project)
    cfg, th, train, val = load_project(project, args.params and Path(args.params))
    texts = [r["text"] for r in load_dev_set(project / "devsets/tagger")][:args.docs]
    rows = []
    for backend in args.backends:
        infer = copy.deepcopy(cfg.tagger.infer)
        infer.backend = backend
        with tempfile.TemporaryDirectory() as tmp:
            fit_backend(infer, th, train, val, Path(tmp))   # nothing to fit for the llm
            tagger = Tagger(make_backend(infer, th, trained_model_dir(project, backend, tmp)), th, infer)
            tagger.tag_many(texts[:2])  # warm-up: lazy loads, first-call compilation
            rows.append({"backend": backend, **measure(tagger, texts, args.chunks)})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    print(f"\npeak memory of this process: {peak:.0f} MB; {len(texts)} documents", file=sys.stderr)


if __name__ == "__main__":
    main()
