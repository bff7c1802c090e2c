"""`tagflow edu ...`: the educational-value family (one command per dvc.yaml stage, plus fetch,
predict and the LLM-judge annotation flow)."""
from __future__ import annotations

import click

from . import cli
from .stages import stage_command


@cli.group()
def edu() -> None:
    """Educational-value classifiers: annotations, embeddings, heads, evaluation, registry, scoring."""


def _stage(name: str, help: str) -> None:
    stage_command(edu, "edu", name, help)


_stage("data", "Annotation sets -> one table with train/val/test splits (stage edu_data).")
_stage("validate", "Check the annotation table's data contract with Great Expectations (stage edu_validate).")
_stage("embed", "Embed every page once per encoder, cached (stage edu_embed).")
_stage("train", "Fit the candidate heads per setup and keep the best on validation (stage edu_train).")
_stage("evaluate", "Score each setup on val, test and cross-lingual sets, with CIs (stage edu_evaluate).")
_stage("register", "Register each setup's model and apply the gate (stage edu_register).")


@edu.command()
@click.option("--mirror", help="directory holding a mirror of the public data (e.g. ../shared/data)")
@click.option("--force", is_flag=True, help="fetch even if the files are present")
@click.pass_obj
def fetch(obj: dict, mirror: str | None, force: bool) -> None:
    """Obtain the annotation CSVs into edu.data.raw_dir: official URLs, else the mirror."""
    from ..config import load_config
    from ..edu.data import fetch as fetch_sets

    for source, where in fetch_sets(load_config(obj["params"]).edu.data, mirror, force).items():
        click.echo(f"{source}: {where}")


@edu.command()
@click.option("--input", "input_path", required=True, help="pages: .jsonl or .csv with 'text' (and 'id')")
@click.option("--output", "output_path", required=True, help="JSONL: id, score, int_score, model")
@click.option("--model", "model_name", default=None,
              help="registered model (default: the first of edu.registry.models)")
@click.option("--alias", default="champion", show_default=True, help="registry alias to load")
@click.option("--model-dir", default=None, help="a local model folder (artifacts/edu/models/<setup>) "
                                                "instead of the registry")
@click.pass_obj
def predict(obj: dict, input_path: str, output_path: str, model_name: str | None, alias: str,
            model_dir: str | None) -> None:
    """Score pages for educational value (score, int_score per page), batched."""
    from ..core.io import write_jsonl
    from ..edu.data import read_pages
    from ..edu.predict import load_model

    pages = read_pages(input_path)
    scorer, ref = load_model(obj["params"], model_name, alias, model_dir)
    scores, ints = scorer.score([p["text"] for p in pages])
    write_jsonl(output_path, ({"id": p["id"], "score": round(float(s), 4), "int_score": int(i), "model": ref}
                              for p, s, i in zip(pages, scores, ints)))
    click.echo(f"{len(pages)} pages scored with {ref} -> {output_path}", err=True)


@edu.command()
@click.option("--input", "input_path", required=True, help="pages: .jsonl or .csv with 'text' (and 'id')")
@click.option("--output", "output_path", required=True, help="JSONL of judgements (resumed if present)")
@click.option("--limit", type=int, default=0, help="judge only the first N pages (0: all)")
@click.pass_obj
def annotate(obj: dict, input_path: str, output_path: str, limit: int) -> None:
    """Score pages with the LLM judge (FineWeb-Edu rubric; edu.judge), resumably (Prefect flow)."""
    import json

    from flows.edu import annotate_flow

    stats = annotate_flow(input=input_path, output=output_path, params=obj["params"], limit=limit)
    click.echo(json.dumps(stats))
