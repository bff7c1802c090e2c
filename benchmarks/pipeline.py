"""Benchmark the pipeline from a clean clone: install time, `dvc repro` wall time and peak
memory, no-op `dvc repro` time, and which stages a one-parameter change makes stale.

    python benchmarks/pipeline.py --profile smoke          # a few minutes
    python benchmarks/pipeline.py --profile cpu --keep     # the embedded default, ~1 hour

Prints the figures and writes them to <clone>/benchmark.json. Nothing is timed inside tests.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str], cwd: Path, log) -> float:
    start = time.monotonic()
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=ENV)
    if proc.returncode:
        raise SystemExit(f"`{' '.join(cmd)}` failed with {proc.returncode}; see {log.name}")
    return time.monotonic() - start


ENV = os.environ | {"DVC_NO_ANALYTICS": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                    "GX_ANALYTICS_ENABLED": "false", "BENTOML_DO_NOT_TRACK": "true"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="smoke", choices=["smoke", "cpu", "gpu"])
    ap.add_argument("--dest", help="clone here (default: a new temporary directory)")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared" / "data"),
                    help="data mirror used when the official URL is unreachable")
    ap.add_argument("--keep", action="store_true", help="keep the clone afterwards")
    args = ap.parse_args()

    dest = Path(args.dest or tempfile.mkdtemp(prefix=f"tagflow-bench-{args.profile}-"))
    subprocess.run(["git", "clone", "-q", str(ROOT), str(dest)], check=True)
    ENV["PATH"] = f"{dest / '.venv' / 'bin'}{os.pathsep}{ENV['PATH']}"
    figures: dict = {"profile": args.profile, "clone": str(dest),
                     "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=dest,
                                              capture_output=True, text=True).stdout.strip()}
    with open(dest / "benchmark.log", "w") as log:
        print(f"[bench] clone {dest}; log {log.name}", file=sys.stderr)
        figures["install_seconds"] = round(run(["bash", "infra/setup.sh"], dest, log), 1)
        run([str(dest / ".venv/bin/tagflow"), "profile", args.profile], dest, log)
        run([str(dest / ".venv/bin/tagflow"), "thesaurus", "fetch", "--mirror", args.mirror], dest, log)
        # A wrapper process owns `dvc repro`, so its RUSAGE_CHILDREN peak is the pipeline's alone
        # (the largest single process of the run), not the installer's.
        rss_file = dest / ".repro_peak_rss_kb"
        wrapper = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
                   "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
                   "sys.exit(rc)")
        figures["repro_seconds"] = round(run([sys.executable, "-c", wrapper, str(rss_file), "dvc", "repro"],
                                             dest, log), 1)
        figures["repro_peak_rss_mb"] = round(int(rss_file.read_text()) / 1024, 1)
        figures["noop_repro_seconds"] = round(run(["dvc", "repro"], dest, log), 2)
        # One parameter changed: which stages does DVC see as changed? (Downstream stages then
        # rerun only if that stage's outputs change.)
        params = dest / "params.yaml"
        original = params.read_text()
        for name, old, new in [("lr_change", "    learning_rate: 2.0e-4", "    learning_rate: 1.0e-4"),
                               ("contract_change", "    max_keywords: 8", "    max_keywords: 9"),
                               ("gpu_overlay_change", "        epochs: 3", "        epochs: 4")]:
            params.write_text(original.replace(old, new, 1))
            status = subprocess.run(["dvc", "status", "--json"], cwd=dest, capture_output=True, text=True, env=ENV)
            figures[f"changed_after_{name}"] = sorted(json.loads(status.stdout or "{}"))
        params.write_text(original)
    for name in ("tagger", "synth", "train", "thesaurus", "contracts_splits"):
        path = dest / "metrics" / f"{name}.json"
        if path.exists():
            figures[f"metrics_{name}"] = json.loads(path.read_text())
    registry = dest / "reports" / "registry.json"
    if registry.exists():
        figures["registry"] = json.loads(registry.read_text())
    (dest / "benchmark.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    if not args.keep and not args.dest:
        subprocess.run(["rm", "-rf", str(dest)])


if __name__ == "__main__":
    main()
