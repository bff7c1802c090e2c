"""`tagflow tagger ...`: the keyword tagger family (one command per dvc.yaml stage, plus `tag`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import cli
from .stages import stage_command


@cli.group()
def tagger() -> None:
    """Keyword tagger: synthetic data, SFT, preference tuning, evaluation, registration, tagging."""


def _stage(name: str, help: str) -> None:
    stage_command(tagger, "tagger", name, help)


_stage("synth", "Generate the synthetic SFT splits with the teacher LLM (stage tagger_synth).")
_stage("validate", "Check the splits' data contract with Great Expectations (stage tagger_validate).")
_stage("train", "Fine-tune the tagger: TRL SFT + LoRA (stage tagger_train).")
_stage("fit", "Fit the configured backend on the synthetic splits (stage tagger_fit).")
_stage("evaluate", "Score the tagger on the configured split (stage tagger_evaluate).")
_stage("register", "Log the model with its card, register it and apply the gate (stage tagger_register).")
_stage("pairs", "Sample answers from the SFT model and build preference pairs (stage tagger_pairs).")
_stage("ipo", "Preference-tune the SFT model: IPO with a new LoRA (stage tagger_ipo).")
_stage("pref-evaluate", "Base vs SFT vs SFT+IPO: format, cosine, tagger metrics (stage tagger_pref_evaluate).")
_stage("ipo-register", "Register SFT+IPO as a tagger version behind the same gate (stage tagger_ipo_register).")


def read_documents(file: str, title: str | None = None) -> tuple[list[dict], bool]:
    """(documents, batch?): a JSONL file of {"id", "text", optional "title"} is a batch; a text,
    HTML, PDF or DOCX file (or - for stdin, read as text) one document, whose `title` is given
    here. Each text is read with its title (tagger.text.with_title)."""
    from ..core.documents import extract_text
    from ..core.errors import DataError
    from ..core.io import read_jsonl
    from ..tagger.text import with_title

    if file == "-":
        return [{"id": "stdin", "text": with_title(sys.stdin.read(), title)}], False
    path = Path(file)
    if not path.is_file():
        raise DataError(f"{file}: no such file")
    if path.suffix.lower() == ".jsonl":
        if title is not None:
            raise DataError("--title is for one document; a JSONL file gives each document's \"title\"")
        rows = read_jsonl(path)
        for n, row in enumerate(rows, 1):
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) \
                    or not isinstance(row.get("title", ""), str):
                raise DataError(f"{file}:{n}: each line needs a \"text\" string (and optionally \"id\" "
                                f"and a \"title\" string)")
        return [{"id": row.get("id", str(n)), "text": with_title(row["text"], row.get("title"))}
                for n, row in enumerate(rows, 1)], True
    return [{"id": path.stem, "text": with_title(extract_text(path.read_bytes(), str(path)), title)}], False


@tagger.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--top-n", "--max-keywords", "top_n", type=int, default=None,
              help="concepts per document (default: the model's own)")
@click.option("--refine", type=click.Choice(["none", "specific", "balanced", "broad"]), default=None,
              help="parent/child pairs (default: the model's own)")
@click.option("--lang", type=click.Choice(["en", "fr", "es", "ar", "ru"]), default=None,
              help="language of the labels (default: the model's own)")
@click.option("--model", "model_name", default=None, help="registered model (default: params.yaml's)")
@click.option("--title", default=None, help="the document's title (read as its first paragraph: better "
              "keywords); a JSONL file gives each document's own \"title\"")
@click.pass_obj
def tag(obj: dict, file: str, top_n: int | None, refine: str | None, lang: str | None,
        model_name: str | None, title: str | None) -> None:
    """Tag FILE with the champion: text, HTML, PDF, DOCX, or - for stdin (one JSON answer), or a JSONL file of
    {"id", "text", optional "title"} documents (one JSONL line of ranked concepts per document, all batched)."""
    import pandas as pd

    from ..core import registry
    from ..tagger.artifact import load_card
    from .models import model_name_for

    documents, batch = read_documents(file, title)
    name = model_name_for(obj["params"], model_name)
    model, version = registry.load_champion(name)
    params = {k: v for k, v in {"top_n": top_n, "refine": refine, "lang": lang}.items() if v is not None}
    results = model.predict(pd.DataFrame({"text": [d["text"] for d in documents]}), params=params)
    card = load_card(model)
    ref = {"name": name, "version": version, "backend": card.get("backend")}
    if batch:
        for doc, concepts in zip(documents, results):
            click.echo(json.dumps({"id": doc["id"], "concepts": list(concepts), "model": ref}, ensure_ascii=False))
    else:
        click.echo(json.dumps({"model": ref, "keywords": list(results[0])}, ensure_ascii=False, indent=2))


@tagger.command("tag-corpus")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUTPUT", type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="worker processes of the local Dask cluster")
@click.option("--address", default=None, help="an existing Dask scheduler (tcp://host:8786) instead")
@click.option("--batch-size", type=click.IntRange(1, 10_000), default=32, show_default=True,
              help="documents per task (and per model call)")
@click.option("--top-n", "--max-keywords", "top_n", type=int, default=None, help="concepts per document")
@click.option("--refine", type=click.Choice(["none", "specific", "balanced", "broad"]), default=None)
@click.option("--lang", type=click.Choice(["en", "fr", "es", "ar", "ru"]), default=None)
@click.option("--model", "model_name", default=None, help="registered model (default: params.yaml's)")
@click.option("--threads", type=click.IntRange(1, 256), default=None,
              help="torch threads per worker [default: cores / workers on a local cluster]")
@click.pass_obj
def tag_corpus(obj: dict, input_path: str, output_path: str, workers: int, address: str | None,
               batch_size: int, top_n: int | None, refine: str | None, lang: str | None,
               model_name: str | None, threads: int | None) -> None:
    """Tag a JSONL corpus of {"id", "text"} documents with the champion, on a Dask cluster;
    OUTPUT gets one JSONL line per document. Resumable: a rerun tags only what OUTPUT lacks."""
    from flows.corpus import tag_corpus as run
    from .models import model_name_for

    params = {k: v for k, v in {"top_n": top_n, "refine": refine, "lang": lang}.items() if v is not None}
    summary = run(input_path, output_path, model_name_for(obj["params"], model_name), workers=workers,
                  address=address, batch_size=batch_size, params=params, threads=threads)
    click.echo(json.dumps(summary))


@tagger.command()
def backends() -> None:
    """List the tagger backends and their default parameters."""
    from ..tagger.backends import get_backend, names

    for name in names():
        click.echo(f"{name}: {json.dumps(get_backend(name).DEFAULT_PARAMETERS)}")
