"""Prefect flows of the topics family's stages: one flow per dvc.yaml stage, each a task around
the `run(cfg)` of one topics module."""
from __future__ import annotations

from flows.common import stage_flow
from tagflow.topics import contracts, data, evaluate, register, train

build_flow = stage_flow("topics-data", data.run)   # command `build`, stage topics_data
validate_flow = stage_flow("topics-validate", contracts.run)
train_flow = stage_flow("topics-train", train.run)
evaluate_flow = stage_flow("topics-evaluate", evaluate.run)
register_flow = stage_flow("topics-register", register.run)
