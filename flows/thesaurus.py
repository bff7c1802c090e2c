"""Prefect flow of the `thesaurus` stage (`tagflow thesaurus build`): parse the SKOS dump into the
concept table, check its contract, write its stats. Logic: tagflow.thesaurus.build."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from tagflow.config import load_config
from tagflow.thesaurus import build

# Tasks take paths and configs, not large objects, so Prefect never hashes a table; DVC, not
# Prefect, decides what is stale (cache_policy=NONE).
stage_task = task(cache_policy=NONE)


@flow(name="thesaurus")
def thesaurus_flow(params: str = "params.yaml") -> dict:
    cfg = load_config(params)
    stats = stage_task(build.parse)(cfg.thesaurus)
    stage_task(build.check)()
    build.write_stats(stats)
    return stats
