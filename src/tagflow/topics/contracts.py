"""Stage `topics_validate`: the Reuters table's data contract (Great Expectations, through
`core.contracts`). A violation stops the pipeline before training."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from ..core.contracts import ContractReport, gx_expectations, validate
from ..core.io import write_json
from . import paths
from .config import ContractsConfig
from .data import document_text

if TYPE_CHECKING:
    from ..config import Config


def check_table(table: pd.DataFrame, info: dict, cfg: ContractsConfig, docs_dir: str | Path) -> ContractReport:
    """Documents (ids, splits, labels inside the label set, some text) and the label set."""
    gxe = gx_expectations()
    known = set(info["labels"])
    docs = pd.DataFrame({
        "id": table["id"],
        "split": table["split"],
        "text_chars": [len(document_text(t, b)) for t, b in zip(table["title"], table["body"])],
        "n_labels": table["labels"].map(len),
        "unknown_labels": [", ".join(t for t in labels if t not in known) or None for labels in table["labels"]],
        "body_or_null": [b if isinstance(b, str) and b.strip() else None for b in table["body"]],
    })
    doc_exps = [
        gxe.ExpectColumnValuesToNotBeNull(column="id"),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "validation", "test"]),
        gxe.ExpectColumnValuesToBeBetween(column="text_chars", min_value=1),
        gxe.ExpectColumnValuesToBeBetween(column="n_labels", min_value=1),
        gxe.ExpectColumnValuesToBeNull(column="unknown_labels"),
        gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column="body_or_null", min_value=1.0 - cfg.max_empty_body_share),
    ]
    batches = [("topics.documents", docs, doc_exps)]
    for split, least in (("train", cfg.min_train_docs), ("validation", cfg.min_val_docs)):
        part = docs[docs["split"] == split][["id"]]
        batches.append((f"topics.{split}", part, [gxe.ExpectTableRowCountToBeBetween(min_value=least)]))
    labels = pd.DataFrame({"label": info["labels"]})
    batches.append(("topics.labels", labels, [
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.min_labels),
        gxe.ExpectColumnValuesToBeUnique(column="label"),
        gxe.ExpectColumnValuesToMatchRegex(column="label", regex=r"^[a-z0-9][a-z0-9.-]*$"),
    ]))
    return validate(batches, Path(docs_dir), index_column="id")


def run(cfg: "Config") -> dict:
    from .data import read_table

    table, info = read_table()
    report = check_table(table, info, cfg.topics.contracts, paths.CONTRACTS_DIR)
    metrics = {"expectations": len(report.results), "failed": len(report.failures)}
    write_json(paths.METRICS_CONTRACTS, metrics)  # only reached when every expectation passed
    return metrics
