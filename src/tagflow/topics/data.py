"""Stage `topics_data`: the SGML distribution -> one table with splits and a label set.

ModApte: stories with TOPICS="YES" and at least one topic; LEWISSPLIT="TRAIN" is the training
part, "TEST" the test part. Validation is carved out of the training part by seed (the test part
may be withheld, as in the project's mirror). Label sets: `all` = every topic with at least one
training document (and one test document when a test split is used: the usual 90), `top10` = the
10 topics with most training documents; documents left without a label are dropped (3,019 test
documents for the 90).
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from ..core.errors import DataError
from ..core.io import atomic_path, write_json
from ..core.log import get_logger
from . import paths
from .config import DataConfig

if TYPE_CHECKING:
    import pandas as pd

    from ..config import Config

log = get_logger("topics.data")


def topic_counts(frame: "pd.DataFrame") -> Counter:
    return Counter(t for topics in frame["topics"] for t in topics)


def build_table(raw: "pd.DataFrame", cfg: DataConfig) -> tuple["pd.DataFrame", dict]:
    """(table with `split` and `labels` columns, label info) from the parsed distribution."""
    modapte = raw[(raw["topics_attr"] == "YES") & (raw["topics"].map(len) > 0)]
    train_part = modapte[modapte["lewissplit"] == "TRAIN"]
    test_part = modapte[modapte["lewissplit"] == "TEST"]
    if train_part.empty:
        raise DataError("no ModApte training documents (LEWISSPLIT=\"TRAIN\", TOPICS=\"YES\", a topic)")
    if cfg.test_split == "modapte" and test_part.empty:
        raise DataError("topics.data.test_split is modapte but the SGML has no LEWISSPLIT=\"TEST\" "
                        "documents (use test_split: none, or the full distribution)")
    train_counts = topic_counts(train_part)
    top10 = [t for t, _ in sorted(train_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
    if cfg.label_set == "top10":
        labels = sorted(top10)
    else:
        labels = sorted(train_counts)
        if cfg.test_split == "modapte":
            test_topics = set(topic_counts(test_part))
            labels = [t for t in labels if t in test_topics]
    parts = [train_part.assign(split="train")]
    if cfg.test_split == "modapte":
        parts.append(test_part.assign(split="test"))
    import pandas as pd

    table = pd.concat(parts, ignore_index=True)
    keep = set(labels)
    table["labels"] = [[t for t in topics if t in keep] for topics in table["topics"]]
    table = table[table["labels"].map(len) > 0].reset_index(drop=True)

    rng = np.random.default_rng(cfg.seed)
    train_idx = np.flatnonzero(table["split"].to_numpy() == "train")
    n_val = int(round(len(train_idx) * cfg.val_fraction))
    val_idx = rng.choice(train_idx, size=n_val, replace=False)
    split = table["split"].to_numpy().copy()
    split[val_idx] = "validation"
    table["split"] = split
    keep_rows = np.ones(len(table), dtype=bool)
    for name, limit in (("train", cfg.max_train_docs), ("validation", cfg.max_val_docs)):
        if limit > 0:
            keep_rows[rng.permutation(np.flatnonzero(split == name))[limit:]] = False
    table = table[keep_rows].sort_values("id", kind="stable").reset_index(drop=True)
    info = {"label_set": cfg.label_set, "labels": labels, "top10": sorted(top10),
            "test_split": cfg.test_split}
    return table, info


def read_table(splits: tuple[str, ...] | None = None) -> tuple["pd.DataFrame", dict]:
    """The table (optionally only some splits) and its label info, as the data stage wrote them."""
    import pandas as pd

    from ..core.io import read_json

    info = read_json(paths.LABELS, "topics label set")
    try:
        table = pd.read_parquet(paths.TABLE)
    except FileNotFoundError:
        raise DataError(f"{paths.TABLE}: not found (run `tagflow topics build`)") from None
    table["labels"] = table["labels"].map(list)
    table["topics"] = table["topics"].map(list)
    if splits is not None:
        table = table[table["split"].isin(splits)].reset_index(drop=True)
    return table, info


def document_text(title: str, body: str) -> str:
    """What every model reads: the headline, then the story."""
    title, body = (title or "").strip(), (body or "").strip()
    return f"{title}\n{body}" if title and body else title or body


def stats(table: "pd.DataFrame", info: dict) -> dict:
    out: dict = {"labels": len(info["labels"]), "label_set": info["label_set"]}
    for split in ("train", "validation", "test"):
        part = table[table["split"] == split]
        out[f"{split}_docs"] = int(len(part))
        if len(part):
            out[f"{split}_labels_per_doc"] = round(float(part["labels"].map(len).mean()), 4)
            out[f"{split}_labels_present"] = len(topic_counts(part.assign(topics=part["labels"])))
    return out


def run(cfg: "Config") -> dict:
    """Stage `topics_data`: parse the SGML files in `topics.data.raw_dir` into the table."""
    from .config import check
    from .reuters import read_dir

    check(cfg.topics)
    c = cfg.topics.data
    raw = read_dir(c.raw_dir)
    table, info = build_table(raw, c)
    with atomic_path(paths.TABLE) as tmp:
        table.to_parquet(tmp, index=False)
    write_json(paths.LABELS, info)
    metrics = {"parsed_docs": int(len(raw)),
               "sgml_test_docs": int((raw["lewissplit"] == "TEST").sum()), **stats(table, info)}
    write_json(paths.METRICS_DATA, metrics)
    log.info("topics data: %s", metrics)
    return metrics


def texts_of(table: "pd.DataFrame") -> list[str]:
    return [document_text(t, b) for t, b in zip(table["title"], table["body"])]


def label_matrix(label_lists, labels: list[str]) -> np.ndarray:
    index = {label: j for j, label in enumerate(labels)}
    Y = np.zeros((len(label_lists), len(labels)), dtype=bool)
    for i, doc_labels in enumerate(label_lists):
        for label in doc_labels:
            if label in index:
                Y[i, index[label]] = True
    return Y
