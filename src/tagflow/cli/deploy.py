"""`tagflow deploy`: the retrain deployments (one per family, crons from params.yaml) on a Prefect server."""
from __future__ import annotations

from pathlib import Path

import click

from . import cli


@cli.command()
@click.option("--pool", default=None, help="work pool (default: params.yaml deploy.pool, a process pool)")
@click.option("--image", default=None, help="image holding the project, for a Docker or Kubernetes pool")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE",
              help="environment of the flow runs, e.g. MLFLOW_TRACKING_URI=http://mlflow:5000 (repeatable)")
@click.option("--family", "families", multiple=True, help="deploy only these families (repeatable)")
@click.pass_obj
def deploy(obj: dict, pool: str | None, image: str | None, env: tuple[str, ...],
           families: tuple[str, ...]) -> None:
    """Create or update retrain/<family> for each family on the server PREFECT_API_URL names."""
    from ..config import load_config
    from ..core.errors import ConfigError
    from ..deploy import apply

    if any("=" not in item for item in env):
        raise ConfigError(f"--env takes KEY=VALUE, got {[i for i in env if '=' not in i]}")

    cfg = load_config(obj["params"])
    root = Path.cwd()   # entrypoints are relative to the project root, where tagflow runs
    for name, spec in apply(cfg.deploy, root, pool=pool, image=image,
                             env=dict(item.split("=", 1) for item in env), families=list(families)):
        state = "active" if spec.active else "paused (deploy.schedules.*.active in params.yaml)"
        click.echo(f"deployed {name}: cron '{spec.schedule.cron}' {spec.schedule.timezone}, {state}")
