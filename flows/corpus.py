"""Tagging a corpus at scale: a Prefect flow whose batches run on a Dask cluster.

    tagflow tagger tag-corpus docs.jsonl tagged.jsonl --workers 2          # local cluster
    tagflow tagger tag-corpus docs.jsonl tagged.jsonl --address tcp://host:8786   # an existing one

The champion's version is pinned when the flow starts, so every batch is tagged by the same model
even if the alias moves meanwhile. Each worker process loads that model once. Finished batches are
appended as they complete (in any order), which makes the run resumable (tagflow.tagger.corpus).
"""
from __future__ import annotations

import contextlib
import os

from prefect import flow, task
from prefect.futures import as_completed

from tagflow.core.log import Progress, get_logger
from tagflow.tagger import corpus


@task(name="tag-batch", retries=2, retry_delay_seconds=5)
def tag_batch(model_uri: str, docs: list[dict], params: dict, threads: int | None) -> list[dict]:
    return corpus.tag_batch(model_uri, docs, params, threads)


def task_runner(workers: int, address: str | None):
    from prefect_dask import DaskTaskRunner

    if address:
        return DaskTaskRunner(address=address)
    # One thread per worker process: the model's own math (torch) gets the cores instead.
    return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


@contextlib.contextmanager
def one_api_server(address: str | None):
    """Local Dask workers are processes of their own. In Prefect's ephemeral mode (no
    PREFECT_API_URL) each would start its own API server on the same sqlite database: seconds of
    start-up each, and under load the servers contended until the run hung. So the run starts one
    ephemeral server on loopback and hands its URL to the workers through the environment they
    inherit. With a configured server, or a remote cluster, nothing changes."""
    if address or os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)
        server.stop()


def tag_corpus(input_path: str, output_path: str, model_name: str, *, workers: int = 1,
               address: str | None = None, batch_size: int = 32, params: dict | None = None,
               threads: int | None = None) -> dict:
    """Tag every document of `input_path` not yet in `output_path`; returns counts. `threads`:
    torch threads per worker (default: the machine's cores shared out on a local cluster, the
    workers' own default on a remote one)."""
    from tagflow.core import registry

    log = get_logger("corpus")
    todo, done = corpus.pending(input_path, output_path)
    version = registry.champion_version(model_name)
    uri = f"models:/{model_name}/{version}"
    if not todo:
        log.info("%s: all %d documents already tagged", output_path, done)
        return {"tagged": 0, "already_done": done, "model": uri}
    parts = corpus.batches(todo, batch_size)
    if threads is None and not address:
        threads = max(1, (os.cpu_count() or 1) // workers)
    log.info("%d documents to tag (%d already done) in %d batches with %s on %s", len(todo), done,
             len(parts), uri, address or f"a local Dask cluster of {workers} worker(s)")

    @flow(name="tag-corpus", task_runner=task_runner(workers, address), log_prints=True)
    def run() -> int:
        progress = Progress("corpus", len(todo), unit="docs")
        futures = [tag_batch.submit(uri, part, params or {}, threads) for part in parts]
        tagged = 0
        for future in as_completed(futures):
            rows = future.result()
            corpus.append(output_path, rows)
            tagged += len(rows)
            progress.update(tagged)
        progress.done()
        return tagged

    with one_api_server(address):
        tagged = run()
    return {"tagged": tagged, "already_done": done, "model": uri}
