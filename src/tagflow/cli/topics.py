"""`tagflow topics ...`: the Reuters-21578 topic classifier (one command per dvc.yaml stage,
plus `fetch` and `predict`)."""
from __future__ import annotations

from pathlib import Path

import click

from . import cli
from .stages import stage_command


@cli.group()
def topics() -> None:
    """Multi-label topic classifier on Reuters-21578: data, training, evaluation, registry, predict."""


def _stage(name: str, help: str) -> None:
    stage_command(topics, "topics", name, help)


_stage("build", "Parse the SGML files into the table with splits and label set (stage topics_data).")
_stage("validate", "Check the table's data contract with Great Expectations (stage topics_validate).")
_stage("train", "Train the candidates: TF-IDF + LinearSVC, transformer + LoRA (stage topics_train).")
_stage("evaluate", "Score the candidates, tune thresholds, select one (stage topics_evaluate).")
_stage("register", "Log the selected model with its card, register it, apply the gate (stage topics_register).")


@topics.command()
@click.option("--mirror", help="directory holding a mirror of the public data (e.g. ../shared/data)")
@click.option("--force", is_flag=True, help="fetch even if the SGML files are present")
@click.pass_obj
def fetch(obj: dict, mirror: str | None, force: bool) -> None:
    """Obtain Reuters-21578: the official archive, else the mirror's SGML files or archive."""
    from ..config import load_config
    from ..topics.reuters import fetch_reuters

    cfg = load_config(obj["params"])
    fetch_reuters(cfg.topics.data.url, cfg.topics.data.raw_dir, mirror=mirror, force=force)


def read_documents(path: str) -> list[dict]:
    """{"id", "text"} rows of a JSONL or CSV file with a `text` column (`id` optional: line number)."""
    import pandas as pd

    from ..core.errors import DataError
    from ..core.io import read_jsonl

    file = Path(path)
    if not file.is_file():
        raise DataError(f"{path}: no such file")
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = read_jsonl(file)
    elif suffix == ".csv":
        try:
            rows = pd.read_csv(file, dtype=str, keep_default_na=False).to_dict("records")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    else:
        raise DataError(f"{path}: expected a .jsonl or .csv file, not {suffix or 'no extension'}")
    docs = []
    for n, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f"{path}: record {n} has no \"text\" string")
        docs.append({"id": str(row.get("id") or n), "text": row["text"]})
    if not docs:
        raise DataError(f"{path}: no documents")
    return docs


@topics.command()
@click.option("--input", "input_path", required=True, help="documents: .jsonl or .csv with a `text` column (optional `id`)")
@click.option("--output", "output_path", required=True, help="JSONL answers, one line per document")
@click.option("--model", "model_ref", default=None,
              help="registered model alias or version: champion (default), challenger, 3; or models:/name@alias")
@click.option("--local", "local_dir", default=None,
              help="a trained candidate folder instead (artifacts/topics/models/<kind>); thresholds from "
                   "artifacts/topics/eval/<kind>/thresholds.json when present, else 0.5")
@click.option("--top-k", default=5, show_default=True, help="probabilities reported besides the topics")
@click.pass_obj
def predict(obj: dict, input_path: str, output_path: str, model_ref: str | None, local_dir: str | None,
            top_k: int) -> None:
    """Topics with probabilities for each document, from a registered version or a local model."""
    from ..core.io import write_jsonl

    docs = read_documents(input_path)
    texts = [d["text"] for d in docs]
    if local_dir:
        from ..topics.inference import load_local
        from ..topics.paths import thresholds_file

        thresholds = Path(thresholds_file(Path(local_dir).name))
        predictor = load_local(local_dir, thresholds if thresholds.exists() else None)
        answers, model = predictor.predict(texts, top_k), {"local": str(local_dir)}
    else:
        answers, model = _registered_answers(obj["params"], model_ref, texts, top_k)
    write_jsonl(output_path, ({"id": d["id"], **a, "model": model} for d, a in zip(docs, answers)))
    click.echo(f"{len(docs)} documents -> {output_path}", err=True)


def _registered_answers(params: str, ref: str | None, texts: list[str], top_k: int):
    import mlflow
    import pandas as pd

    from ..core import registry
    from ..core.errors import RegistryError

    name = _model_name(params)
    ref = ref or "champion"
    if ref.startswith("models:/"):
        name, _, tail = ref.removeprefix("models:/").partition("@")
        name, _, number = name.partition("/")
        ref = tail or number or "champion"
    registry._client()  # the project store (MLFLOW_TRACKING_URI or ./mlflow.db)
    client = mlflow.MlflowClient()
    try:
        version = ref if ref.isdigit() else str(client.get_model_version_by_alias(name, ref).version)
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    except mlflow.exceptions.MlflowException as exc:
        raise RegistryError(f"model {name!r} {ref!r} not found in {registry.tracking_uri()}: "
                            f"{str(exc).splitlines()[0]}") from None
    answers = model.predict(pd.DataFrame({"text": texts}), params={"top_k": top_k})
    return answers, {"name": name, "version": version}


def _model_name(params: str) -> str:
    from ..topics.config import RegistryConfig

    if Path(params).exists():
        from ..config import load_config
        return load_config(params).topics.registry.model_name
    return RegistryConfig().model_name
