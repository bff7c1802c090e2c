"""Scale-out of corpus tagging on Dask (figures, not assertions): `tagflow tagger tag-corpus` at 1
and at 2 (or --workers ...) local Dask workers, same champion, same input, a fresh output each run.

    python benchmarks/corpus_scale.py --n 2000 --workers 1 2            # the cpu tagger, 2,000 docs
    python benchmarks/corpus_scale.py --n 200 --model fake --repeats 2   # plumbing only (word lookup)

In a scratch folder: a sqlite MLflow registry whose champion is `cpu` (the cpu profile's embedding
tagger over the UNESCO dump, built as in benchmarks/serve_load.py) or `fake` (the tests' word
lookup: measures the flow and Dask, not a model), and a corpus of N documents cycling the dev
set's real texts (devsets/tagger, 44 documents of 300-900 words) under unique ids.

Each tag-corpus run is a user's run: its own process, ephemeral Prefect server (or, with
--prefect-server, one real server on loopback shared by the runs and their Dask workers, as on a
site that runs Prefect), local cluster, one model load per worker. End-to-end docs/s counts all of that; a second, tiny run per worker
count (one batch per worker) measures the fixed cost, so `marginal docs/s` = (N - n0) / (t - t0)
is the steady tagging rate. Runs of different worker counts alternate (1, 2, 1, 2, ...) so a
change in machine load hits both. The ratio is each count's rate over the first count's.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from serve_load import cpu_model, fake_model, free_port, newest_dump, register_twice  # noqa: E402 (benchmarks/ is the script's folder)

TAGFLOW = str(Path(sys.executable).with_name("tagflow"))
MODEL_NAME = "scale-tagger"


def write_corpus(path: Path, n: int) -> None:
    texts = [json.loads(line)["text"] for f in sorted((ROOT / "devsets" / "tagger").glob("*.jsonl"))
             for line in f.read_text().splitlines() if line.strip()]
    with path.open("w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"doc-{i:06d}", "text": texts[i % len(texts)]}) + "\n")


def prefect_env(work: Path, label: str) -> dict:
    return {"PREFECT_HOME": str(work / f"prefect-{label}"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def start_prefect_server(work: Path) -> tuple[subprocess.Popen, str]:
    """A Prefect server on loopback (its own home and database in work/); (process, API URL)."""
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    log = (work / "prefect-server.log").open("wb")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env={**os.environ, **prefect_env(work, "server")},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"prefect server exited {proc.returncode}; see {log.name}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(1)
    os.killpg(proc.pid, signal.SIGTERM)
    sys.exit("prefect server not healthy after 300 s")


def tag_corpus(work: Path, uri: str, docs: Path, workers: int, batch_size: int, label: str,
               api_url: str | None, threads: int | None = None) -> float:
    """Wall seconds of one tag-corpus run into a fresh output; exits if it fails or misses documents."""
    out = work / f"out-{label}.jsonl"
    out.unlink(missing_ok=True)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, **prefect_env(work, label), "DVC_NO_ANALYTICS": "1"}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    start = time.monotonic()
    done = subprocess.run([TAGFLOW, "tagger", "tag-corpus", str(docs), str(out), "--model", MODEL_NAME,
                           "--workers", str(workers), "--batch-size", str(batch_size)]
                          + (["--threads", str(threads)] if threads else []),
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if done.returncode != 0:
        sys.exit(f"tag-corpus ({label}) exited {done.returncode}:\n{done.stderr[-3000:]}")
    expected = sum(1 for _ in docs.open())
    got = sum(1 for _ in out.open())
    if got != expected:
        sys.exit(f"tag-corpus ({label}) wrote {got} lines for {expected} documents")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="documents in the corpus")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Dask worker counts to compare")
    parser.add_argument("--batch-size", type=int, default=16, help="documents per task")
    parser.add_argument("--repeats", type=int, default=1, help="runs per worker count (alternating)")
    parser.add_argument("--model", choices=["cpu", "fake"], default="cpu")
    parser.add_argument("--dump", type=Path, default=None, help="UNESCO dump for the cpu model (default: newest)")
    parser.add_argument("--prefect-server", action="store_true",
                        help="runs and Dask workers report to one Prefect server on loopback (no ephemeral ones)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per worker (default: cores / workers). 1 gives every worker one "
                             "core, as a node of a real cluster brings its own: Dask's scaling, not the machine's")
    parser.add_argument("--no-fixed-cost", action="store_true", help="skip the tiny runs that measure start-up")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="corpus-scale-") as tmp:
        work = Path(tmp)
        log_model = cpu_model(work, args.dump or newest_dump()) if args.model == "cpu" else fake_model(work)
        uri = register_twice(work, MODEL_NAME, log_model)
        docs = work / "docs.jsonl"
        write_corpus(docs, args.n)
        server, api_url = start_prefect_server(work) if args.prefect_server else (None, None)
        load_before = os.getloadavg()
        try:
            times = measure(args, work, uri, docs, api_url)
        finally:
            if server:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
        load_after = os.getloadavg()
    report(args, *times, load_before, load_after)


def measure(args, work: Path, uri: str, docs: Path, api_url: str | None):
    """(wall seconds of the full runs, of the one-batch-per-worker runs), per worker count."""
    runs: dict[int, list[float]] = {w: [] for w in args.workers}
    fixed: dict[int, list[float]] = {w: [] for w in args.workers}
    for rep in range(args.repeats):
        for w in args.workers:
            if not args.no_fixed_cost:
                small = work / f"small-{w}.jsonl"
                write_corpus(small, w * args.batch_size)
                fixed[w].append(tag_corpus(work, uri, small, w, args.batch_size, f"small-{w}-{rep}", api_url,
                                           args.threads))
            runs[w].append(tag_corpus(work, uri, docs, w, args.batch_size, f"{w}-{rep}", api_url, args.threads))
            print(f"[scale] {w} worker(s), run {rep + 1}: {args.n} docs in {runs[w][-1]:.1f}s"
                  + (f" (one batch per worker: {fixed[w][-1]:.1f}s)" if fixed[w] else ""), flush=True)
    return runs, fixed


def report(args, runs: dict, fixed: dict, load_before, load_after) -> None:
    def rate(w: int) -> float:
        return args.n / statistics.mean(runs[w])

    def marginal(w: int) -> float | None:
        if not fixed[w]:
            return None
        n0 = w * args.batch_size
        span = statistics.mean(runs[w]) - statistics.mean(fixed[w])
        return (args.n - n0) / span if span > 0 and args.n > n0 else None

    first = args.workers[0]
    print(f"\nmodel {args.model}, {args.n} documents, batch {args.batch_size}, {args.repeats} run(s) per count, "
          f"{'one Prefect server' if args.prefect_server else 'ephemeral Prefect per run'}, "
          f"torch threads per worker {args.threads or 'cores / workers'}, "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / {load_after[0]:.1f} after\n")
    print("| workers | wall s (runs) | docs/s end-to-end | ratio (per repeat) | one batch per worker, s "
          "| marginal docs/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for w in args.workers:
        walls = ", ".join(f"{t:.1f}" for t in runs[w])
        # Run r of each count ran back to back, so their ratio shares the machine's load then.
        paired = ", ".join(f"{a / b:.2f}" for a, b in zip(runs[first], runs[w]))
        m, m0 = marginal(w), marginal(first)
        startup = f"{statistics.mean(fixed[w]):.1f}" if fixed[w] else "-"
        print(f"| {w} | {statistics.mean(runs[w]):.1f} ({walls}) | {rate(w):.2f} | {rate(w) / rate(first):.2f}x ({paired}) "
              f"| {startup} | {f'{m:.2f}' if m else '-'} | {f'{m / m0:.2f}x' if m and m0 else '-'} |")


if __name__ == "__main__":
    main()
