"""Prefect flows of the tagger's stages: one flow per dvc.yaml stage, each a task around the
`run(cfg)` of one tagger module (where all the logic, MLflow runs included, lives). Runs show in
the Prefect UI when PREFECT_API_URL points at a server; ephemeral otherwise."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from tagflow.config import load_config
from tagflow.tagger import contracts, evaluate, fit, register, sft, synth

stage_task = task(cache_policy=NONE)  # DVC, not Prefect, decides what is stale


def stage_flow(name: str, run):
    """A flow that loads params.yaml and runs `run(cfg)` as its one task."""
    @flow(name=name)
    def stage(params: str = "params.yaml"):
        return stage_task(run)(load_config(params))
    return stage


synth_flow = stage_flow("tagger-synth", synth.run)
validate_flow = stage_flow("tagger-validate", contracts.run)
train_flow = stage_flow("tagger-train", sft.run)
fit_flow = stage_flow("tagger-fit", fit.run)
evaluate_flow = stage_flow("tagger-evaluate", evaluate.run)
register_flow = stage_flow("tagger-register", register.run)
