"""Project-wide commands: the profile switch and the MLflow server."""
from __future__ import annotations

import re
from pathlib import Path

import click

from ..core.config import PROFILES
from ..core.errors import ConfigError
from . import cli


@cli.command()
@click.argument("name", type=click.Choice(PROFILES))
@click.pass_obj
def profile(obj: dict, name: str) -> None:
    """Switch the active profile (the `profile:` line of params.yaml; comments and layout kept)."""
    from ..config import load_config

    path = Path(obj["params"])
    if not path.exists():
        raise ConfigError(f"{path}: no such parameters file (run from the project root)")
    text = path.read_text()
    new, n = re.subn(r"(?m)^profile:\s*\S+", f"profile: {name}", text, count=1)
    if n != 1:
        raise ConfigError(f"{path}: no top-level `profile:` line to change")
    load_config(path, profile=name)  # refuse a profile that does not load before writing
    path.write_text(new)
    click.echo(f"profile set to {name} in {path}")


@cli.command("mlflow-server")
@click.option("--port", type=int, default=5000, show_default=True)
def mlflow_server(port: int) -> None:
    """Start the MLflow UI + tracking server on 127.0.0.1 over the project store."""
    from ..core import registry
    registry.serve(port)
