"""One click command per dvc.yaml stage, each running its Prefect flow (`flows.<family>.<name>_flow`)."""
from __future__ import annotations

import importlib

import click


def stage_command(group: click.Group, family: str, name: str, help: str) -> None:
    """Add command `name` to `group`: it runs `flows.<family>.<name>_flow(params=...)` (a
    hyphen in the command is an underscore in the flow's name)."""
    def run(obj: dict) -> None:
        flows = importlib.import_module(f"flows.{family}")
        getattr(flows, f"{name.replace('-', '_')}_flow")(params=obj["params"])
    run.__doc__ = help
    group.command(name)(click.pass_obj(run))
