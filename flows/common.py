"""What every family's flows share: a stage flow is one task around one module's `run(cfg)`."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from tagflow.config import load_config
from tagflow.core import reaper

stage_task = task(cache_policy=NONE)  # DVC, not Prefect, decides what is stale


def stage_flow(name: str, run):
    """A flow that loads params.yaml and runs `run(cfg)` as its one task. It first tags its flow
    run with its process (host, pid) and crashes the flow runs of killed stages (core.reaper)."""
    @flow(name=name)
    def stage(params: str = "params.yaml"):
        reaper.claim_and_reap_flow_run()
        return stage_task(run)(load_config(params))
    return stage
