"""Prefect flows of the edu family: one flow per dvc.yaml stage (a task around one module's
`run(cfg)`), and the annotation flow: an LLM judge scores new pages, resumably (a retried task or
a rerun picks up where the output file stops)."""
from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from flows.common import stage_flow
from tagflow.config import load_config
from tagflow.edu import contracts, data, embed, evaluate, register, train

data_flow = stage_flow("edu-data", data.run)
validate_flow = stage_flow("edu-validate", contracts.run)
embed_flow = stage_flow("edu-embed", embed.run)
train_flow = stage_flow("edu-train", train.run)
evaluate_flow = stage_flow("edu-evaluate", evaluate.run)
register_flow = stage_flow("edu-register", register.run)


@task(cache_policy=NONE, retries=2, retry_delay_seconds=5)
def judge_task(pages: list[dict], output: str, judge_cfg) -> dict:
    """A retry resumes from the output file: finished pages are never judged twice."""
    from tagflow.edu.judge import annotate, make_judge

    return annotate(pages, make_judge(judge_cfg), output, batch_size=judge_cfg.batch_size)


@flow(name="edu-annotate")
def annotate_flow(input: str, output: str, params: str = "params.yaml", limit: int = 0) -> dict:
    """Score the pages of `input` (JSONL/CSV with `text`, optional `id`) into `output` (JSONL)."""
    cfg = load_config(params).edu.judge
    pages = data.read_pages(input)
    return judge_task(pages[:limit] if limit > 0 else pages, output, cfg)
