"""Served educational-value scoring under concurrency (figures, not assertions).

    python benchmarks/serve_edu.py                                  # artifacts/edu/models/en, 20 s per level
    python benchmarks/serve_edu.py --model-dir artifacts/edu/models/multilingual --seconds 30

In a scratch folder: a sqlite MLflow registry holding the edu model folder as edu_register logs
it (v1 champion), then a real `bentoml serve` on loopback with TAGFLOW_READY_FAMILIES=edu (no
tagger needed). Pages: the English annotation set (../shared/data/fineweb-edu-llama33), round robin.

Reported: the in-process `EduScorer.score` of all pages (the evaluation's path, no HTTP; batch as
the card says) in pages/s; the served `/edu_batch` scores' largest difference from it (served =
measured); then for each client count, pages/s and p50/p95/p99 of `/edu` (one page per request,
concurrent requests sharing one encoder batch through the service's queue), refusals and errors;
one client posting `/edu_batch` of 32 pages; the largest shared batch; memory of serve + worker.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serve_load import Serve, load, pct, register_twice  # noqa: E402


def batch_load(url: str, texts: list[str], seconds: float, size: int = 32) -> dict:
    """One client posting /edu_batch of `size` pages for `seconds`."""
    times, pages, i = [], 0, 0
    stop_at = time.monotonic() + seconds
    with httpx.Client(timeout=300) as http:
        while time.monotonic() < stop_at:
            chunk = [texts[(i + k) % len(texts)] for k in range(size)]
            start = time.monotonic()
            resp = http.post(f"{url}/edu_batch", json={"texts": chunk})
            resp.raise_for_status()
            times.append(time.monotonic() - start)
            pages += size
            i += size
    return {"batch": size, "requests": len(times), "pages_per_s": round(pages / sum(times), 2),
            "p50": pct(times, 0.5), "p95": pct(times, 0.95)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="artifacts/edu/models/en")
    parser.add_argument("--pages", default=str(ROOT.parent / "shared/data/fineweb-edu-llama33/annotations.csv"))
    parser.add_argument("--clients", default="1,8")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    import numpy as np
    import pandas as pd

    from tagflow.edu.artifact import log_edu
    from tagflow.edu.model import EduScorer

    texts = pd.read_csv(args.pages)["text"].astype(str).tolist()
    model_dir = str(Path(args.model_dir).resolve())
    scorer = EduScorer.load(model_dir)
    scorer.score(texts[:4])                                     # warm: load the encoder once
    started = time.monotonic()
    direct, _ = scorer.score(texts)
    direct_s = time.monotonic() - started
    report = {"pages": len(texts), "model_dir": args.model_dir, "encoder": scorer.card["encoder"]["model"],
              "bf16": scorer.card.get("bf16"),
              "in_process": {"pages_per_s": round(len(texts) / direct_s, 2), "seconds": round(direct_s, 1)}}
    print(json.dumps(report), flush=True)

    with tempfile.TemporaryDirectory(prefix="serve-edu-") as tmp:
        work = Path(tmp)
        uri = register_twice(work, "edu-bench", lambda: log_edu(model_dir, "edu"))
        server = Serve(work, uri, "no-tagger", ROOT, "serve.log", TAGFLOW_EDU_MODEL_NAME="edu-bench",
                       TAGFLOW_TOPICS_MODEL_NAME="no-topics", TAGFLOW_READY_FAMILIES="edu")
        try:
            report["ready_s"] = round(server.wait_ready(), 1)
            report["rss_mb_ready"] = server.rss_mb()
            served = []
            for i in range(0, len(texts), 32):
                resp = httpx.post(f"{server.url}/edu_batch", json={"texts": texts[i:i + 32]}, timeout=300)
                resp.raise_for_status()
                served += [r["score"] for r in resp.json()["results"]]
            report["served_vs_in_process_max_abs_diff"] = float(np.max(np.abs(np.array(served) - direct)))
            report["levels"] = []
            for clients in [int(c) for c in args.clients.split(",")]:
                level = load(server.url, texts, clients, args.seconds, route="/edu")
                report["levels"].append(level)
                print(json.dumps(level), flush=True)
            report["edu_batch"] = batch_load(server.url, texts, args.seconds)
            report["queue"] = httpx.post(f"{server.url}/info", json={}, timeout=30).json()["families"]["edu"]["queue"]
            report["rss_mb_after"] = server.rss_mb()
        finally:
            server.stop()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
