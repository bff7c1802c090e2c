"""Data contract of the concept table (Great Expectations, through `core.contracts`)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.contracts import ContractReport, as_list, gx_expectations, validate

CONCEPT_LINKS = ("broader", "narrower", "related")


def check_concepts(table: pd.DataFrame, docs_dir: str | Path, *,
                   min_micro_thesaurus_share: float | None = None) -> ContractReport:
    """Validate the concept table; the report goes to `docs_dir/concepts/report.html` (GX Data
    Docs beside it).

    `min_micro_thesaurus_share`: if given, at least this share of concepts must belong to a
    micro-thesaurus (off by default: generic SKOS files may have no groups at all)."""
    gxe = gx_expectations()

    frame = concept_frame(table)
    present = set(table.columns)
    exps: list = [gxe.ExpectTableRowCountToBeBetween(min_value=1)]
    exps += [gxe.ExpectColumnToExist(column=c) for c in ("uri", "pref_en", *CONCEPT_LINKS)]
    if "uri" in present:
        exps += [gxe.ExpectColumnValuesToNotBeNull(column="uri"),
                 gxe.ExpectColumnValuesToMatchRegex(column="uri", regex=r"^\S+$"),
                 gxe.ExpectColumnValuesToBeUnique(column="uri")]
    if "pref_en" in present:
        exps += [gxe.ExpectColumnValuesToNotBeNull(column="pref_en"),
                 gxe.ExpectColumnValuesToMatchRegex(column="pref_en", regex=r"\S"),
                 gxe.ExpectColumnValuesToBeUnique(column="pref_en")]
    exps += [gxe.ExpectColumnValuesToBeNull(column=f"dangling_{rel}")
             for rel in CONCEPT_LINKS if rel in present]
    if min_micro_thesaurus_share is not None:
        exps.append(gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column="micro_thesaurus_or_null", min_value=float(min_micro_thesaurus_share)))
    return validate([("concepts", frame, exps)], Path(docs_dir) / "concepts",
                     index_column="uri" if "uri" in present else None)


def concept_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The checked columns of the table plus helpers: `dangling_<link>` holds the URIs a concept
    points to (broader/narrower/related) that are not rows of the table, else None."""
    kept = [c for c in ("uri", "pref_en", *CONCEPT_LINKS, "micro_thesaurus", "domain")
            if c in table.columns]
    frame = table[kept].copy()
    known = set(table["uri"]) if "uri" in table.columns else set()
    for rel in CONCEPT_LINKS:
        if rel in table.columns:
            frame[f"dangling_{rel}"] = [
                ", ".join(u for u in as_list(v) if u not in known) or None for v in table[rel]]
    if "micro_thesaurus" in table.columns:
        frame["micro_thesaurus_or_null"] = [
            v if isinstance(v, str) and v else None for v in table["micro_thesaurus"]]
    else:
        frame["micro_thesaurus_or_null"] = pd.Series([None] * len(table), dtype=object)
    return frame


