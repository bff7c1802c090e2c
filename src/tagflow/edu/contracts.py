"""Data contract of the annotation table (Great Expectations, through `core.contracts`): scores in
range, no empty or too-short text, a language on every page, no page twice (so none in two
splits), known splits and enough pages in every (source, split)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..core.contracts import ContractReport, gx_expectations, validate
from .config import SOURCES, ContractsConfig
from .data import SPLITS

if TYPE_CHECKING:
    from ..config import Config


def check_table(table: pd.DataFrame, cfg: ContractsConfig, site_dir: str | Path) -> ContractReport:
    """Validate the annotation table; the report goes to `site_dir/report.html`; raises
    ContractError naming every failed expectation."""
    gxe = gx_expectations()
    frame = table.copy()
    frame["text_chars"] = frame["text"].fillna("").str.strip().str.len()
    # ids in more than one split: null everywhere when the splits are disjoint
    splits_per_id = frame.groupby("id")["split"].transform("nunique")
    frame["id_in_other_split"] = frame["id"].where(splits_per_id > 1)
    pages = [
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="text"),
        gxe.ExpectColumnValuesToBeNull(column="id_in_other_split"),
        gxe.ExpectColumnValuesToNotBeNull(column="text"),
        gxe.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S"),
        gxe.ExpectColumnValuesToBeBetween(column="text_chars", min_value=cfg.min_text_chars),
        gxe.ExpectColumnValuesToNotBeNull(column="score"),
        gxe.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=cfg.max_score),
        gxe.ExpectColumnValuesToNotBeNull(column="language"),
        gxe.ExpectColumnValuesToMatchRegex(column="language", regex=r"^[a-z]{2,3}$"),
        gxe.ExpectColumnValuesToNotBeNull(column="annotator"),
        gxe.ExpectColumnValuesToBeInSet(column="source", value_set=sorted(SOURCES)),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
    ]
    counts = (frame.groupby(["source", "split"]).size().rename("pages").reset_index())
    # every (source, split) pair must exist: a missing one shows as 0 pages
    full = pd.MultiIndex.from_product([sorted(frame["source"].dropna().unique()), SPLITS],
                                      names=["source", "split"])
    counts = counts.set_index(["source", "split"]).reindex(full, fill_value=0).reset_index()
    counts["id"] = counts["source"] + "/" + counts["split"]
    sizes = [gxe.ExpectColumnValuesToBeBetween(column="pages", min_value=cfg.min_rows_per_split)]
    return validate([("edu.pages", frame, pages),
                     ("edu.splits", counts, sizes)], Path(site_dir), index_column="id")


def run(cfg: "Config") -> ContractReport:
    """Stage `edu_validate`: the table's contract; a violation stops the pipeline here."""
    from ..core.io import write_json
    from ..core.log import get_logger
    from . import paths
    from .data import load_table

    report = check_table(load_table(), cfg.edu.contracts, paths.CONTRACTS_DIR)
    get_logger("edu_contracts").info("%d expectations passed; report %s", len(report.results),
                                     report.html_path)
    write_json(paths.METRICS_CONTRACTS, {"expectations": len(report.results), "failed": len(report.failures)})
    return report
