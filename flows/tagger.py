"""Prefect flows of the tagger's stages: one flow per dvc.yaml stage, each a task around the
`run(cfg)` of one tagger module (where all the logic, MLflow runs included, lives). Runs show in
the Prefect UI when PREFECT_API_URL points at a server; ephemeral otherwise."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from tagflow.config import load_config
from tagflow.tagger import contracts, evaluate, fit, register, sft, synth

stage_task = task(cache_policy=NONE)  # DVC, not Prefect, decides what is stale


@flow(name="tagger-synth")
def synth_flow(params: str = "params.yaml") -> dict:
    return stage_task(synth.run)(load_config(params))


@flow(name="tagger-validate")
def validate_flow(params: str = "params.yaml") -> None:
    stage_task(contracts.run)(load_config(params))


@flow(name="tagger-train")
def train_flow(params: str = "params.yaml") -> dict:
    return stage_task(sft.run)(load_config(params))


@flow(name="tagger-fit")
def fit_flow(params: str = "params.yaml") -> dict:
    return stage_task(fit.run)(load_config(params))


@flow(name="tagger-evaluate")
def evaluate_flow(params: str = "params.yaml") -> dict:
    return stage_task(evaluate.run)(load_config(params))


@flow(name="tagger-register")
def register_flow(params: str = "params.yaml") -> dict:
    return stage_task(register.run)(load_config(params))
