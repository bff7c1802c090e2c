"""`tagflow thesaurus ...`: the dump and its concept table."""
from __future__ import annotations

import click

from . import cli


@cli.group()
def thesaurus() -> None:
    """The thesaurus: fetch the SKOS dump, check it, build the concept table, diff two dumps."""


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


@thesaurus.command("check-dump")
@click.pass_obj
def check_dump(obj: dict) -> None:
    """Check the dump (parses, concept table meets its contract) before DVC records data/ (stage `data`)."""
    from flows.thesaurus import check_dump_flow
    check_dump_flow(params=obj["params"])


@thesaurus.command()
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
@click.option("--dataset", "datasets", multiple=True, type=click.Path(),
              help="JSONL file or folder of rows with gold `uris` (default: the dev set and the "
                   "synthetic splits, where present)")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="write the full report here")
@click.option("--no-models", is_flag=True, help="do not read the model registry")
@click.pass_obj
def diff(obj: dict, old: str, new: str, datasets: tuple[str, ...], json_out: str | None, no_models: bool) -> None:
    """What changed from dump OLD to dump NEW, and which gold labels and models it touches."""
    from pathlib import Path

    from ..config import load_config
    from ..core.io import write_json
    from ..thesaurus.diff import diff_dumps, summary_lines

    cfg = load_config(obj["params"])
    paths = [Path(d) for d in datasets] or [Path(cfg.tagger.evaluate.dev_set or "devsets/tagger"), Path("artifacts/sft")]
    result = diff_dumps(old, new, cfg.thesaurus.languages, paths, check_models=not no_models)
    for line in summary_lines(result):
        click.echo(line)
    if json_out:
        write_json(json_out, result.as_dict())
