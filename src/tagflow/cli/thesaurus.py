"""`tagflow thesaurus ...`: the dump and its concept table."""
from __future__ import annotations

import click

from . import cli


@cli.group()
def thesaurus() -> None:
    """The thesaurus: fetch the SKOS dump, build the concept table."""


@thesaurus.command()
@click.option("--mirror", help="directory holding a mirror of the public data (e.g. ../shared/data)")
@click.option("--force", is_flag=True, help="fetch even if the dump is present")
@click.pass_obj
def fetch(obj: dict, mirror: str | None, force: bool) -> None:
    """Obtain the thesaurus dump: the official URL, else the newest dump in a mirror."""
    from ..config import load_config
    from ..thesaurus.fetch import fetch_thesaurus

    cfg = load_config(obj["params"])
    fetch_thesaurus(cfg.thesaurus.url, cfg.thesaurus.dump, mirror=mirror, force=force)


@thesaurus.command()
@click.pass_obj
def build(obj: dict) -> None:
    """Parse the SKOS dump into the concept table and check its contract (stage `thesaurus`)."""
    from flows.thesaurus import thesaurus_flow
    thesaurus_flow(params=obj["params"])
