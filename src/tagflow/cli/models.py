"""Registry commands for any family's registered model: list, promote, roll back."""
from __future__ import annotations

import getpass
import json
from pathlib import Path

import click

from . import cli

DEFAULT_MODEL = "unesco-tagger"


def model_name_for(params: str, given: str | None) -> str:
    """--model if given, else the tagger's registered name in params.yaml (or its default)."""
    if given:
        return given
    if Path(params).exists():
        from ..config import load_config
        return load_config(params).tagger.registry.model_name
    return DEFAULT_MODEL


model_option = click.option("--model", "model_name", default=None,
                            help=f"registered model name (default: params.yaml's tagger, {DEFAULT_MODEL})")


@cli.command()
@model_option
@click.option("--history", is_flag=True, help="the audit trail instead: every alias change, oldest first")
@click.pass_obj
def models(obj: dict, model_name: str | None, history: bool) -> None:
    """List registered versions, aliases and gate decisions (one JSON line each)."""
    from ..core import registry

    name = model_name_for(obj["params"], model_name)
    if history:
        events = registry.audit_trail(name)
        if not events:
            click.echo(f"no alias changes of {name} on record")
        for event in events:
            click.echo(json.dumps(event, ensure_ascii=False))
        return
    rows = registry.describe(name)
    if not rows:
        click.echo(f"no versions of {name} registered yet (run `dvc repro`)")
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False))


@cli.command()
@click.option("--version", required=True, help="registered version to make champion")
@click.option("--why", required=True, help="reason, recorded on the version")
@click.option("--who", default=getpass.getuser, show_default="you", help="recorded on the version")
@model_option
@click.pass_obj
def promote(obj: dict, version: str, why: str, who: str, model_name: str | None) -> None:
    """Make a registered version champion by hand (bypasses the gate; who and why recorded)."""
    from ..core import registry

    name = model_name_for(obj["params"], model_name)
    registry.promote(name, str(version), who=who, why=why)
    click.echo(f"{name} v{version} is now champion")


@cli.command()
@click.option("--why", required=True, help="reason, recorded on both versions")
@click.option("--who", default=getpass.getuser, show_default="you")
@click.option("--to-version", default=None, help="roll back to this version instead")
@model_option
@click.pass_obj
def rollback(obj: dict, why: str, who: str, to_version: str | None, model_name: str | None) -> None:
    """Give the champion alias back to the previous champion (or --to-version)."""
    from ..core import registry

    name = model_name_for(obj["params"], model_name)
    version = registry.rollback(name, who=who, why=why, to_version=to_version)
    click.echo(f"{name}: champion rolled back to v{version}")
