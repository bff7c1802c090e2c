"""`tagflow tagger ...`: the keyword tagger family (one command per dvc.yaml stage, plus `tag`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import cli


@cli.group(cls=type(cli))
def tagger() -> None:
    """Keyword tagger: synthetic data, SFT, evaluation, registration, tagging."""


def _stage(name: str, help: str):
    def run(obj: dict) -> None:
        from flows import tagger as flows
        getattr(flows, f"{name}_flow")(params=obj["params"])
    run.__doc__ = help
    tagger.command(name)(click.pass_obj(run))


_stage("synth", "Generate the synthetic SFT splits with the teacher LLM (stage tagger_synth).")
_stage("validate", "Check the splits' data contract with Great Expectations (stage tagger_validate).")
_stage("train", "Fine-tune the tagger: TRL SFT + LoRA (stage tagger_train).")
_stage("evaluate", "Score the tagger on the configured split (stage tagger_evaluate).")
_stage("register", "Log the model with its card, register it and apply the gate (stage tagger_register).")


@tagger.command()
@click.argument("file", type=click.Path(allow_dash=True))
@click.option("--top-n", type=int, default=None, help="concepts to return (default: the model's own)")
@click.option("--model", "model_name", default=None, help="registered model (default: params.yaml's)")
@click.pass_obj
def tag(obj: dict, file: str, top_n: int | None, model_name: str | None) -> None:
    """Tag a text file (or - for stdin) with the champion; defaults come from the model's card."""
    import pandas as pd

    from ..core import registry
    from ..core.errors import DataError
    from ..tagger.artifact import load_card
    from .models import model_name_for

    name = model_name_for(obj["params"], model_name)
    if file == "-":
        text = sys.stdin.read()
    elif not Path(file).is_file():
        raise DataError(f"{file}: no such file")
    else:
        text = Path(file).read_text()
    model, version = registry.load_champion(name)
    params = {} if top_n is None else {"top_n": top_n}
    result = model.predict(pd.DataFrame({"text": [text]}), params=params)[0]
    card = load_card(model)
    click.echo(json.dumps({"model": {"name": name, "version": version, "backend": card.get("backend")},
                           "keywords": result}, ensure_ascii=False, indent=2))


@tagger.command()
def backends() -> None:
    """List the tagger backends and their default parameters."""
    from ..tagger.backends import get_backend, names

    for name in names():
        click.echo(f"{name}: {json.dumps(get_backend(name).DEFAULT_PARAMETERS)}")
