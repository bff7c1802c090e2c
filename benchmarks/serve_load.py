"""Load and fault benchmark of the tagger service (figures, not assertions).

    python benchmarks/serve_load.py --model cpu --seconds 20          # a real cpu-profile tagger
    python benchmarks/serve_load.py --model fake --seconds 20         # the tests' word-lookup fake
    python benchmarks/serve_load.py --model cpu --services-from a5d83cb --no-faults   # the old service

In a scratch folder: a sqlite MLflow registry holding the model twice (v1 champion, v2 for the
rollback case), then a real `bentoml serve` on loopback. `cpu` builds the cpu profile's tagger
from the project's own code, with params.yaml's `cpu` tagger.infer (today `route`: MiniLM for
English chunks, multilingual e5 for the others; top_n 8, refine specific, 3000-character chunks),
fitted over the UNESCO dump (--dump, default: the newest in ../shared/data/unesco-thesaurus) or
taken from --fitted; it is not evaluated, so its versions carry no gate verdict. Requests are the
dev set's 44 documents (30 English, 7 French, 7 Spanish), round robin.

Reported: bad inputs tried (status, time), then for each client count the requests/s served,
p50/p95/p99 latency of served requests, refused (503) and the time to refusal, other errors, and
/info latency probed during the load; memory (RSS of serve + worker, and of the worker alone, after
each level: `--clients 8,8,8,8` gives it per round of 8 clients) before and after; and the
fault cases: registry down at start, alias promotion and rollback followed, SIGTERM, SIGKILL.
--services-from REV runs the service and library code (services/, src/) of a git revision, on
the same registered model (for before/after figures).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
BENTOML = str(Path(sys.executable).with_name("bentoml"))
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def newest_dump() -> Path:
    dumps = sorted((ROOT.parent / "shared" / "data" / "unesco-thesaurus").glob("*.ttl"))
    if not dumps:
        sys.exit("no UNESCO dump found; pass --dump PATH")
    return dumps[-1]


# ---------------------------------------------------------------- models


def register_twice(work: Path, name: str, log_model) -> str:
    """A sqlite registry in work/ with `name` v1 (champion) and v2; returns its URI."""
    import mlflow

    uri = f"sqlite:///{work}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("serve-load", artifact_location=(work / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = log_model()
    for _ in range(2):
        mlflow.register_model(info.model_uri, name)
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    mlflow.set_tracking_uri(None)
    return uri


def cpu_model(work: Path, dump: Path, fitted: Path | None = None):
    """log_model() for the cpu profile's tagger (params.yaml's `cpu` tagger.infer: today the
    `route` backend), fitted now over `dump`, or taken from `fitted`: a backend directory fitted
    before with the same parameters over the same dump (the e5 member's index takes minutes)."""
    import shutil

    from tagflow.config import load_config
    from tagflow.core.tracking import code_version
    from tagflow.tagger.artifact import file_sha256, log_tagger, model_card, requirements
    from tagflow.tagger.backends import fit_backend, get_backend
    from tagflow.thesaurus import Thesaurus, parse_skos

    started = time.monotonic()
    table = parse_skos(dump, ["en", "fr", "es", "ar", "ru"])
    concepts = work / "concepts.parquet"
    table.to_parquet(concepts, index=False)
    infer = load_config(ROOT / "params.yaml", "cpu").tagger.infer
    model_dir = work / "backend"
    if fitted:
        shutil.copytree(fitted, model_dir)
    else:
        model_dir.mkdir()  # fit writes into an existing folder (the stage's is made atomically)
        fit_backend(infer, Thesaurus(table), [], [], model_dir)
    card = model_card(infer, get_backend(infer.backend).model_info(model_dir),
                      {"dump": dump.name, "sha256": file_sha256(dump), "concepts": len(table)},
                      code_version(), "cpu")
    print(f"built the cpu tagger ({infer.backend}, {len(table)} concepts) in {time.monotonic() - started:.0f}s",
          flush=True)
    return lambda: log_tagger(str(model_dir), str(concepts), card, requirements(infer.backend))


def fake_model(work: Path):
    import pandas as pd
    from mlflow.models import infer_signature

    import mlflow

    from tagflow.thesaurus import parse_skos
    from tests.integration.test_service import FAKE_TAGGER

    code = work / "fake_tagger.py"
    code.write_text(FAKE_TAGGER)
    concepts = work / "concepts.parquet"
    parse_skos(ROOT / "tests" / "data" / "tiny.ttl", ["en", "fr"]).to_parquet(concepts, index=False)
    signature = infer_signature(pd.DataFrame({"text": ["a museum"]}), params={"top_n": 10})
    return lambda: mlflow.pyfunc.log_model(name="tagger", python_model=str(code), signature=signature,
                                           artifacts={"concepts": str(concepts)}, pip_requirements=[])


# ---------------------------------------------------------------- the server


class Serve:
    def __init__(self, work: Path, uri: str, name: str, cwd: Path, log_name: str, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = work / log_name
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TAGFLOW_MODEL_NAME": name,
               "BENTOML_HOME": str(work / "bentoml"), "BENTOML_DO_NOT_TRACK": "true",
               "PYTHONPATH": os.pathsep.join([str(cwd), str(cwd / "src")]), **env}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([BENTOML, "serve", "services.tagger_service:Tagger", "--host", "127.0.0.1",
                                          "--port", str(self.port)], cwd=cwd, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self.started = time.monotonic()

    def wait_ready(self, timeout: float = 600) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - self.started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        sys.exit(f"not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def pids(self) -> list[int]:
        import psutil
        try:
            main = psutil.Process(self.proc.pid)
            return [main.pid] + [c.pid for c in main.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_mb(self, workers_only: bool = False) -> float:
        """RSS of serve and its workers together (or of the workers only: serve's children)."""
        import psutil
        total = 0
        for pid in self.pids()[1 if workers_only else 0:]:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return round(total / 2**20, 1)

    def stop(self, sig=signal.SIGTERM, timeout: float = 120) -> dict:
        """Send `sig` to serve's process group; seconds until serve and every worker are gone."""
        import psutil
        pids, start = self.pids(), time.monotonic()
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        while time.monotonic() - start < timeout:
            alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
            self.proc.poll()
            if not alive:
                return {"seconds": round(time.monotonic() - start, 2), "exit": self.proc.wait(timeout=10), "left": []}
            time.sleep(0.1)
        for p in alive:                    # clean up what the service left behind
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return {"seconds": None, "exit": self.proc.poll(), "left": alive}


# ---------------------------------------------------------------- measurements


BAD_INPUTS = [
    ("missing text", {}), ("empty text", {"text": ""}), ("blank text", {"text": " \n\t"}),
    ("text not a string", {"text": 42}), ("text as list", {"text": ["a"]}),
    ("top_n 0", {"text": "museum", "top_n": 0}), ("top_n 51", {"text": "museum", "top_n": 51}),
    ("top_n string", {"text": "museum", "top_n": "5"}), ("unknown refine", {"text": "museum", "refine": "x"}),
    ("unknown lang", {"text": "museum", "lang": "de"}), ("210k characters", {"text": "museum " * 30_000}),
]


def bad_inputs(url: str) -> list[dict]:
    out = []
    cases = [(name, dict(json=payload)) for name, payload in BAD_INPUTS] + [
        ("malformed JSON", dict(content=b'{"text": ', headers={"content-type": "application/json"})),
        ("5 MiB body", dict(content=b'{"text": "' + b"x" * (5 << 20) + b'"}', headers={"content-type": "application/json"})),
    ]
    for name, kwargs in cases:
        start = time.monotonic()
        resp = httpx.post(f"{url}/tag", timeout=60, **kwargs)
        out.append({"case": name, "status": resp.status_code, "ms": round(1000 * (time.monotonic() - start), 1)})
    for name, filename, data in [(".doc file", "old.doc", b"\xd0\xcf\x11\xe0"),
                                 ("corrupt .pdf", "broken.pdf", b"%PDF-1.4 1 0 obj"), ("empty .docx", "e.docx", b"")]:
        start = time.monotonic()
        resp = httpx.post(f"{url}/tag_file", files={"file": (filename, data)}, timeout=60)
        out.append({"case": name, "status": resp.status_code, "ms": round(1000 * (time.monotonic() - start), 1)})
    return out


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def load(url: str, texts: list[str], clients: int, seconds: float, route: str = "/tag") -> dict:
    served, refused, refused_at, errors, info = [], 0, [], {}, []
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(offset: int) -> None:
        nonlocal refused
        with httpx.Client(timeout=300) as http:
            i = offset
            while time.monotonic() < stop_at:
                start = time.monotonic()
                try:
                    resp = http.post(f"{url}{route}", json={"text": texts[i % len(texts)]})
                    code = resp.status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                elapsed = time.monotonic() - start
                with lock:
                    if code == 200:
                        served.append(elapsed)
                    elif code == 503:
                        refused += 1
                        refused_at.append(elapsed)
                    else:
                        errors[str(code)] = errors.get(str(code), 0) + 1
                if code == 503:         # a well-behaved client waits as told
                    time.sleep(min(float(resp.headers.get("Retry-After", 1)), max(0.0, stop_at - time.monotonic())))
                i += clients

    def probe() -> None:
        with httpx.Client(timeout=300) as http:
            while time.monotonic() < stop_at:
                start = time.monotonic()
                http.post(f"{url}/info", json={})
                info.append(time.monotonic() - start)
                time.sleep(0.5)

    started, load_before = time.monotonic(), os.getloadavg()[0]     # the machine may be shared
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)] + [threading.Thread(target=probe)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started          # includes the requests still running at the end
    return {"clients": clients, "seconds": round(wall, 1), "served": len(served),
            "req_per_s": round(len(served) / wall, 2), "p50": pct(served, 0.5), "p95": pct(served, 0.95),
            "p99": pct(served, 0.99), "refused": refused, "refusal_p95": pct(refused_at, 0.95),
            "errors": errors, "info_p50": pct(info, 0.5), "info_max": round(max(info), 3) if info else None,
            "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)]}


def follow_alias(work: Path, uri: str, name: str, url: str) -> dict:
    from tagflow.core import registry

    os.environ["MLFLOW_TRACKING_URI"] = uri
    out = {}
    for what, act, want in [("promotion v1 -> v2", lambda: registry.promote(name, "2", "bench", "serve_load"), "2"),
                            ("rollback v2 -> v1", lambda: registry.rollback(name, "bench", "serve_load"), "1")]:
        start = time.monotonic()
        act()
        seen = None
        while time.monotonic() - start < 120:
            seen = httpx.post(f"{url}/info", json={}, timeout=60).json()["model"]["version"]
            if seen == want:
                break
            time.sleep(0.1)
        answered = httpx.post(f"{url}/tag", json={"text": "Museums and heritage"}, timeout=300).json()
        out[what] = {"followed": seen == want, "seconds": round(time.monotonic() - start, 1),
                     "tag_answered_by": answered.get("model", {}).get("version")}
    return out


def registry_down(work: Path, name: str, cwd: Path) -> dict:
    with socket.socket() as held:              # bound, never listening: connections refused
        held.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{held.getsockname()[1]}"
        serve = Serve(work, dead, name, cwd, "serve-registry-down.log")
        try:
            code = serve.proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            code = None
        seconds = round(time.monotonic() - serve.started, 1)
        left = serve.stop(signal.SIGKILL) if code is None else {}
    lines = serve.log.read_text(errors="replace").splitlines()
    message = next((line for line in lines if "did not answer" in line), None)
    return {"exit": code, "seconds": seconds, "log_lines": len(lines), "message": message, **({"killed": left} if left else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["cpu", "fake"], default="cpu")
    ap.add_argument("--dump", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--services-from", default=None, help="git revision whose services/ to run")
    ap.add_argument("--fitted", type=Path, default=None,
                    help="cpu: a backend directory already fitted with the cpu profile's parameters over --dump")
    ap.add_argument("--no-faults", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder; one from an earlier run (same --model) reuses its registry")
    args = ap.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="serve-load-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"scratch folder: {work}", flush=True)
    name = "bench-tagger"
    cwd = ROOT
    if args.services_from:
        cwd = work / f"checkout-{args.services_from}"
        cwd.mkdir(exist_ok=True)
        archive = subprocess.run(["git", "archive", args.services_from, "services", "src"], cwd=ROOT,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x"], input=archive, cwd=cwd, check=True)
    if (work / "mlflow.db").exists():
        import mlflow
        uri = f"sqlite:///{work}/mlflow.db"
        mlflow.MlflowClient(tracking_uri=uri).set_registered_model_alias(name, "champion", "1")
    else:
        log_model = (cpu_model(work, args.dump or newest_dump(), args.fitted) if args.model == "cpu"
                     else fake_model(work))
        uri = register_twice(work, name, log_model)
    texts = []
    for f in sorted((ROOT / "devsets" / "tagger").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in f.read_text().splitlines() if line.strip()]

    report: dict = {"model": args.model, "services": args.services_from or "working tree",
                    "cpus": os.cpu_count(), "texts": len(texts),
                    "mean_chars": round(statistics.mean(len(t) for t in texts))}
    serve = Serve(work, uri, name, cwd, "serve.log")
    report["ready_seconds"] = round(serve.wait_ready(), 1)
    report["rss_mb_before"] = serve.rss_mb()
    report["bad_inputs"] = bad_inputs(serve.url)
    httpx.post(f"{serve.url}/tag", json={"text": texts[0]}, timeout=300)      # warm-up
    report["rss_mb_warm"] = serve.rss_mb()
    report["worker_rss_mb_warm"] = serve.rss_mb(workers_only=True)
    report["load"] = []
    for clients in [int(c) for c in args.clients.split(",")]:
        report["load"].append(load(serve.url, texts, clients, args.seconds))
        report["load"][-1]["rss_mb"] = serve.rss_mb()
        report["load"][-1]["worker_rss_mb"] = serve.rss_mb(workers_only=True)
        print(json.dumps(report["load"][-1]), flush=True)
    report["rss_mb_after"] = serve.rss_mb()
    if not args.no_faults:
        report["alias"] = follow_alias(work, uri, name, serve.url)
        busy = threading.Thread(target=lambda: httpx.post(f"{serve.url}/tag", json={"text": texts[1]}, timeout=300))
        busy.start()                                 # SIGTERM with a request in flight
        time.sleep(0.2)
        report["sigterm"] = serve.stop(signal.SIGTERM)
        busy.join()
        again = Serve(work, uri, name, cwd, "serve-sigkill.log")
        again.wait_ready()
        report["sigkill"] = again.stop(signal.SIGKILL, timeout=60)
        report["registry_down_at_start"] = registry_down(work, name, cwd)
    else:
        report["sigterm"] = serve.stop(signal.SIGTERM)
    print(json.dumps(report, indent=1))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
