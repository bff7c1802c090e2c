"""Prefect flows of the tagger's stages: one flow per dvc.yaml stage, each a task around the
`run(cfg)` of one tagger module (where all the logic, MLflow runs included, lives). Runs show in
the Prefect UI when PREFECT_API_URL points at a server; ephemeral otherwise."""
from __future__ import annotations

from flows.common import stage_flow, stage_task  # noqa: F401 (stage_task: re-exported)
from tagflow.tagger import contracts, evaluate, fit, ipo, pairs, prefeval, register, sft, synth


synth_flow = stage_flow("tagger-synth", synth.run)
validate_flow = stage_flow("tagger-validate", contracts.run)
train_flow = stage_flow("tagger-train", sft.run)
fit_flow = stage_flow("tagger-fit", fit.run)
evaluate_flow = stage_flow("tagger-evaluate", evaluate.run)
register_flow = stage_flow("tagger-register", register.run)
pairs_flow = stage_flow("tagger-pairs", pairs.run)
ipo_flow = stage_flow("tagger-ipo", ipo.run)
pref_evaluate_flow = stage_flow("tagger-pref-evaluate", prefeval.run)
ipo_register_flow = stage_flow("tagger-ipo-register", register.run_ipo)
