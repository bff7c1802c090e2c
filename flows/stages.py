"""One Prefect flow per pipeline stage. `dvc repro` runs `tagflow <stage>`, which runs the flow
below: runs appear in the Prefect UI when PREFECT_API_URL points at a server, and use an
ephemeral API otherwise. Tasks are thin calls into the `tagflow` library; no logic lives here.
Tasks take paths and configs, not large objects, so Prefect never hashes a model or a table
(cache_policy=NONE: DVC, not Prefect, decides what is stale)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from tagflow import paths
from tagflow.config import load_config
from tagflow.io import write_json

stage_task = task(cache_policy=NONE)


@stage_task
def parse_thesaurus(dump: str, languages: list[str]) -> dict:
    from tagflow.thesaurus import parse_skos, table_stats, write_table

    table = parse_skos(dump, languages)
    write_table(table, paths.CONCEPTS)
    return table_stats(table)


@stage_task
def check_concepts() -> None:
    import pandas as pd

    from tagflow.contracts import check_concepts as check

    check(pd.read_parquet(paths.CONCEPTS), paths.CONTRACTS_DIR)  # writes <dir>/concepts/


@flow(name="thesaurus")
def thesaurus_flow(params: str = "params.yaml") -> dict:
    cfg = load_config(params)
    stats = parse_thesaurus(cfg.thesaurus.dump, cfg.thesaurus.languages)
    check_concepts()
    write_json(paths.METRICS_THESAURUS, stats)
    get_run_logger().info("concept table: %s", stats)
    return stats


@stage_task
def generate_splits(params: str) -> dict:
    from tagflow import synth
    from tagflow.thesaurus import Thesaurus

    cfg = load_config(params)
    splits, stats = synth.generate(Thesaurus.load(paths.CONCEPTS), cfg.synth, cfg.contracts.min_text_words)
    synth.write_splits(splits, paths.SFT_DIR)
    return stats


@flow(name="synth-sft")
def synth_flow(params: str = "params.yaml") -> dict:
    stats = generate_splits(params)
    write_json(paths.METRICS_SYNTH, stats)
    get_run_logger().info("synthetic data: %s", stats)
    return stats


@flow(name="validate")
def validate_flow(params: str = "params.yaml") -> None:
    import pandas as pd

    from tagflow.contracts import check_splits

    cfg = load_config(params)
    expected = {"train": cfg.synth.n_train, "val": cfg.synth.n_val, "test": cfg.synth.n_test}
    report = task(check_splits, cache_policy=NONE)(
        paths.SFT_DIR, pd.read_parquet(paths.CONCEPTS), cfg.contracts, expected,
        paths.CONTRACTS_DIR)  # writes <dir>/splits/
    get_run_logger().info("%d expectations passed; report %s", len(report.results), report.html_path)


@flow(name="train-sft")
def train_sft_flow(params: str = "params.yaml") -> dict:
    import mlflow

    from tagflow import tracking
    from tagflow.train_sft import train

    cfg = load_config(params)
    run_params = tracking.flatten("synth", cfg.synth) | tracking.flatten("train_sft", cfg.train_sft)
    run_id = tracking.start_run(cfg.registry.experiment, "train_sft", cfg.profile, run_params)
    try:
        summary = task(train, cache_policy=NONE)(cfg.train_sft, paths.SFT_DIR, paths.ADAPTER_DIR)
        mlflow.log_metrics({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        mlflow.set_tag("runtime", summary["runtime"])
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run()
    write_json(paths.RUN_FILE, {"run_id": run_id, "experiment": cfg.registry.experiment})
    write_json(paths.METRICS_TRAIN, summary)
    return summary


def _run_id() -> str | None:
    path = Path(paths.RUN_FILE)
    return json.loads(path.read_text())["run_id"] if path.exists() else None


@stage_task
def score_split(params: str) -> tuple[dict, list[dict]]:
    from tagflow.evaluate import evaluate, load_split
    from tagflow.tagger import Tagger
    from tagflow.thesaurus import Thesaurus
    from tagflow.train_sft import load_tagger_model

    cfg = load_config(params)
    tok, model = load_tagger_model(paths.ADAPTER_DIR)
    tagger = Tagger(tok, model, Thesaurus.load(paths.CONCEPTS), cfg.tagger)
    return evaluate(tagger, load_split(paths.SFT_DIR, cfg.evaluate.split), batch_docs=cfg.tagger.batch_size)


@flow(name="evaluate-tagger")
def evaluate_flow(params: str = "params.yaml") -> dict:
    import mlflow

    from tagflow import tracking
    from tagflow.io import write_jsonl

    cfg = load_config(params)
    metrics, predictions = score_split(params)
    write_jsonl(paths.PREDICTIONS, predictions)
    write_json(paths.METRICS_TAGGER, metrics)
    with tracking.resume_run(cfg.registry.experiment, _run_id(), cfg.profile):
        mlflow.log_params(tracking.flatten("tagger", cfg.tagger) | {"evaluate.split": cfg.evaluate.split})
        mlflow.log_metrics({f"{cfg.evaluate.split}/{k}": v for k, v in metrics.items()} | metrics)
        mlflow.log_artifact(paths.PREDICTIONS, "evaluation")
    get_run_logger().info("test metrics: %s", metrics)
    return metrics


@flow(name="register")
def register_flow(params: str = "params.yaml") -> dict:
    import mlflow

    from tagflow import registry, tracking
    from tagflow.pyfunc import log_tagger, requirements

    cfg = load_config(params)
    metrics = json.loads(Path(paths.METRICS_TAGGER).read_text())
    with tracking.resume_run(cfg.registry.experiment, _run_id(), cfg.profile) as run:
        mlflow.set_tags(tracking.dvc_hashes() | tracking.git_state())
        if Path("dvc.lock").exists():
            mlflow.log_artifact("dvc.lock", "lineage")
        info = task(log_tagger, cache_policy=NONE)(
            paths.ADAPTER_DIR, paths.CONCEPTS, dataclasses.asdict(cfg.tagger), requirements())
    decision = registry.register_and_gate(info.model_uri, run.info.run_id, cfg.registry, metrics)
    report = dataclasses.asdict(decision) | {"model_name": cfg.registry.model_name, "run_id": run.info.run_id}
    write_json(paths.REGISTRY_REPORT, report)
    get_run_logger().info("registry decision: %s", report)
    return report
