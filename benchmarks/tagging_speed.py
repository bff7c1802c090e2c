"""Tagging speed per backend on this machine: documents/s when all documents go through one
`tag_many` call (every chunk of every document batched) versus one document at a time, chunk
latency p50/p95 (one chunk per call), and the process's peak memory.

    python benchmarks/tagging_speed.py --project . --backends lexical embedding
    python benchmarks/tagging_speed.py --project . --backends llm      # needs artifacts/tagger
    python benchmarks/tagging_speed.py --fitted DIR --concepts concepts.parquet --shards --docs 15

Documents: the hand-indexed development set (devsets/tagger). Fits lexical/embedding/ensemble
on the project's synthetic training split first (not timed). Prints one Markdown table.

--shards times params.yaml's tagger.infer (today `route`), already fitted in --fitted over the
concept table --concepts, in rounds that alternate the encoder's two ways of using the cores:
`plain` (one encoder call, torch's own intra-op threads) and `sharded` (length-sorted shards on
single-threaded pool threads, backends/shards.py), each one document at a time and in batches of
--batch documents (what the service's queue merges), and checks that both answer the same.
--docs takes every n-th development document so that the languages stay mixed.
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


def docs_per_s(tagger: Tagger, texts: list[str], batch: int) -> tuple[float, list]:
    start, answers = time.monotonic(), []
    for i in range(0, len(texts), batch):
        answers += tagger.tag_many(texts[i:i + batch])
    return len(texts) / (time.monotonic() - start), answers


def compare_shards(tagger: Tagger, texts: list[str], batch: int, rounds: int) -> list[dict]:
    """Rows of (round, mode, docs/s one at a time, docs/s in batches); raises if the modes'
    answers differ (other concepts, or scores apart by more than float rounding)."""
    from tagflow.core.encoders import embed
    from tagflow.tagger.backends import shards

    sharded = shards.embed_sharded
    modes = {"plain": embed, "sharded": sharded}
    rows, reference = [], None
    tagger.tag_many(texts[:2])                    # warm-up: lazy loads, the pool, first calls
    for r in range(1, rounds + 1):
        for mode, fn in modes.items():
            shards.embed_sharded = fn             # embedding.window_scores looks it up per call
            try:
                single, answers = docs_per_s(tagger, texts, 1)
                batched, _ = docs_per_s(tagger, texts, batch)
            finally:
                shards.embed_sharded = sharded
            got = [[(c.uri, c.score) for c in a.concepts] for a in answers]
            reference = reference or got
            for mine, ref in zip(got, reference):
                if [u for u, _ in mine] != [u for u, _ in ref] or any(abs(a - b) > 1e-4 for (_, a), (_, b) in zip(mine, ref)):
                    raise SystemExit(f"{mode} answered differently: {mine} vs {ref}")
            rows.append({"round": r, "mode": mode, "single": round(single, 3), "batched": round(batched, 3),
                         "ratio": round(batched / single, 2)})
            print(rows[-1], file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default=".")
    ap.add_argument("--backends", nargs="+", default=["lexical", "embedding"])
    ap.add_argument("--params", help="params.yaml to read tagger.infer from (default: the project's)")
    ap.add_argument("--docs", type=int, default=44, help="development documents used")
    ap.add_argument("--chunks", type=int, default=30, help="chunks timed one by one for latency")
    ap.add_argument("--shards", action="store_true", help="plain vs sharded encoder calls (see above)")
    ap.add_argument("--fitted", type=Path, help="--shards: the fitted backend directory")
    ap.add_argument("--concepts", type=Path, help="--shards: the concept table it was fitted over")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    project = Path(args.project)
    texts = [r["text"] for r in load_dev_set(project / "devsets/tagger")]
    if args.shards:
        from tagflow.config import load_config
        from tagflow.thesaurus import Thesaurus

        if not (args.fitted and args.concepts):
            sys.exit("--shards needs --fitted and --concepts")
        infer = load_config(Path(args.params or project / "params.yaml")).tagger.infer
        th = Thesaurus.load(args.concepts)
        texts = texts[::max(1, len(texts) // args.docs)][:args.docs]
        rows = compare_shards(Tagger(make_backend(infer, th, args.fitted), th, infer), texts, args.batch,
                              args.rounds)
        print(f"| round | encoder | docs/s one at a time | docs/s in batches of {args.batch} | ratio |\n|---|---|---|---|---|")
        for row in rows:
            print(f"| {row['round']} | {row['mode']} | {row['single']} | {row['batched']} | {row['ratio']} |")
        print(f"\n{len(texts)} documents, backend {infer.backend}; answers identical across modes", file=sys.stderr)
        return
    cfg, th, train, val = load_project(project, args.params and Path(args.params))
    texts = texts[:args.docs]
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
