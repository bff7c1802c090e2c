"""The `thesaurus` stage: SKOS dump -> concept table (Parquet) -> its data contract -> stats."""
from __future__ import annotations

from ..core.io import write_json
from .config import ThesaurusConfig

CONCEPTS = "artifacts/thesaurus/concepts.parquet"
CONTRACTS_DIR = "reports/contracts"
METRICS = "metrics/thesaurus.json"


def parse(cfg: ThesaurusConfig, out: str = CONCEPTS) -> dict:
    from .skos import parse_skos, table_stats, write_table

    table = parse_skos(cfg.dump, cfg.languages)
    write_table(table, out)
    return table_stats(table)


def check(concepts: str = CONCEPTS, docs_dir: str = CONTRACTS_DIR) -> None:
    import pandas as pd

    from .contracts import check_concepts

    check_concepts(pd.read_parquet(concepts), docs_dir)  # writes <dir>/concepts/; raises on failure


def write_stats(stats: dict, path: str = METRICS) -> None:
    write_json(path, stats)
