"""The `thesaurus` stage: SKOS dump -> concept table -> its data contract -> table + stats; and
the `data` stage's check of a new dump before DVC records it.

Nothing is written until the contract passed: a broken or contract-violating dump leaves the last
good table, contract report and stats in place (the stage's outputs are `persist: true` in
dvc.yaml, so DVC does not delete them before running it), and its failing report goes to
reports/contracts/rejected/ instead."""
from __future__ import annotations

import shutil
from pathlib import Path

from ..core.io import write_json
from .config import ThesaurusConfig

CONCEPTS = "artifacts/thesaurus/concepts.parquet"
CONTRACTS_DIR = "reports/contracts"
REJECTED_DIR = "reports/contracts/rejected"   # a report lands here first; moved on when it passes
METRICS = "metrics/thesaurus.json"


def run(cfg) -> dict:
    """Stage `thesaurus`: parse, check, then write the table and its stats (atomically)."""
    from .skos import table_stats, write_table

    table = checked_table(cfg.thesaurus)
    write_table(table, CONCEPTS)
    stats = table_stats(table)
    write_json(METRICS, stats)
    return stats


def check_dump(cfg) -> dict:
    """Stage `data`: the dump parses and its concept table meets the contract (raises otherwise),
    so a dump DVC records is one the `thesaurus` stage accepts. Writes nothing but the report."""
    from .skos import table_stats

    return table_stats(checked_table(cfg.thesaurus, docs_dir=None))


def checked_table(cfg: ThesaurusConfig, docs_dir: str | None = CONTRACTS_DIR):
    """The concept table of `cfg.dump`, after its contract passed. The GX report is built under
    REJECTED_DIR and moved to `docs_dir`/concepts only when it passes (None: removed then)."""
    from .contracts import check_concepts
    from .skos import parse_skos

    table = parse_skos(cfg.dump, cfg.languages)
    check_concepts(table, REJECTED_DIR)  # raises ContractError naming the rejected report
    built = Path(REJECTED_DIR) / "concepts"
    if docs_dir is None:
        shutil.rmtree(built)
    else:
        target = Path(docs_dir) / "concepts"
        shutil.rmtree(target, ignore_errors=True)
        built.replace(target)
    _remove_if_empty(Path(REJECTED_DIR))
    return table


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # holds another family's rejected report
