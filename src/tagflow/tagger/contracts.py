"""Data contract of the SFT splits (Great Expectations, through `core.contracts`): counts, text
length, gold keywords that are English preferred labels of the right concepts, no text in two
splits, prompts and completions consistent with the row."""
from __future__ import annotations

from typing import TYPE_CHECKING

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.contracts import ContractError, ContractReport, as_list, gx_expectations, validate
from .config import ContractsConfig

if TYPE_CHECKING:
    from ..config import Config

SPLITS = ("train", "val", "test")


def check_splits(splits_dir: str | Path, concepts: pd.DataFrame, cfg: ContractsConfig,
                 expected_counts: dict[str, int], docs_dir: str | Path) -> ContractReport:
    """Validate `<split>.jsonl` in `splits_dir` for each split named in `expected_counts`
    (normally train/val/test) against the concept table and `cfg`;
    the report goes to `docs_dir/splits/report.html` (GX Data Docs beside it).
    A missing or non-JSON split file raises ContractError at once, before any report."""
    gxe = gx_expectations()

    rows = load_splits(splits_dir, tuple(expected_counts))
    frames = split_frames(rows, concepts)
    micro_set = sorted({v for v in concepts.get("micro_thesaurus", pd.Series(dtype=object))
                        if isinstance(v, str)})
    batches = []
    for split, frame in frames.items():
        exps = [
            gxe.ExpectTableRowCountToEqual(value=int(expected_counts[split])),
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(column="text"),
            gxe.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S"),
            gxe.ExpectColumnValuesToBeBetween(column="text_words", min_value=cfg.min_text_words),
            gxe.ExpectColumnValuesToBeNull(column="text_also_in_split"),
            gxe.ExpectColumnValuesToBeBetween(column="n_keywords", min_value=cfg.min_keywords,
                                              max_value=cfg.max_keywords),
            # labels[i] belongs to uris[i], so both lists must have the same length
            gxe.ExpectColumnPairValuesToBeEqual(column_A="n_keywords", column_B="n_uris"),
            gxe.ExpectColumnValuesToBeNull(column="labels_not_pref_en"),
            gxe.ExpectColumnValuesToBeNull(column="uris_not_in_thesaurus"),
            gxe.ExpectColumnValuesToBeNull(column="label_not_pref_of_uri"),
            gxe.ExpectColumnValuesToBeNull(column="duplicate_keywords"),
            gxe.ExpectColumnValuesToNotBeNull(column="micro_thesaurus"),
            gxe.ExpectColumnValuesToBeInSet(column="micro_thesaurus", value_set=micro_set),
            gxe.ExpectColumnValuesToBeNull(column="prompt_without_text"),
            gxe.ExpectColumnValuesToNotBeNull(column="completion_content"),
            gxe.ExpectColumnValuesToBeJsonParseable(column="completion_content"),
            gxe.ExpectColumnPairValuesToBeEqual(column_A="completion_labels",
                                                column_B="gold_labels"),
        ]
        batches.append((f"splits.{split}", frame, exps))
    everything = pd.concat(list(frames.values()), ignore_index=True)
    batches.append(("splits.all", everything[["id", "split"]],
                    [gxe.ExpectColumnValuesToBeUnique(column="id")]))
    return validate(batches, Path(docs_dir) / "splits", index_column="id")


def load_splits(splits_dir: str | Path, splits=SPLITS) -> dict[str, list[dict]]:
    from ..core.io import read_jsonl

    splits_dir = Path(splits_dir)
    missing = [str(splits_dir / f"{s}.jsonl") for s in splits
               if not (splits_dir / f"{s}.jsonl").exists()]
    if missing:
        raise ContractError(f"split file(s) missing: {', '.join(missing)}")
    out = {}
    for split in splits:
        try:
            out[split] = read_jsonl(splits_dir / f"{split}.jsonl")
        except ValueError as exc:  # a line that is not JSON: the file itself breaks the contract
            raise ContractError(str(exc)) from exc
    return out


def split_frames(rows: dict[str, list[dict]], concepts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per split: scalar fields plus the helper columns the suites check."""
    pref_of = dict(zip(concepts["uri"], concepts["pref_en"]))
    pref_labels = {v for v in pref_of.values() if v}
    splits_of_text: dict[str, set[str]] = {}
    for split, items in rows.items():
        for row in items:
            text = _text(row)
            if text is not None and text.strip():
                splits_of_text.setdefault(_norm_ws(text), set()).add(split)

    frames = {}
    for split, items in rows.items():
        records = []
        for row in items:
            row = row if isinstance(row, dict) else {}
            text = _text(row)
            labels = [str(x) for x in as_list(row.get("labels"))]
            uris = [str(x) for x in as_list(row.get("uris"))]
            others = sorted(splits_of_text.get(_norm_ws(text), set()) - {split}) if text else []
            content = _message_content(row.get("completion"), "assistant")
            prompt = _message_content(row.get("prompt"), "user")
            mismatch = [f"{lab!r} is not the prefLabel of {uri} ({pref_of[uri]!r})"
                        for lab, uri in zip(labels, uris) if uri in pref_of and pref_of[uri] != lab]
            records.append({
                "id": _str_or_none(row.get("id")),
                "split": split,
                "text": text,
                "text_words": len(text.split()) if text else 0,
                "text_also_in_split": ", ".join(others) or None,
                "n_keywords": len(labels),
                "n_uris": len(uris),
                "labels_not_pref_en": _joined(lab for lab in labels if lab not in pref_labels),
                "uris_not_in_thesaurus": _joined(u for u in uris if u not in pref_of),
                "label_not_pref_of_uri": _joined(mismatch),
                "duplicate_keywords": _joined(sorted({x for x in labels if labels.count(x) > 1})),
                "micro_thesaurus": _str_or_none(row.get("micro_thesaurus")),
                "prompt_without_text": (None if text and prompt and text in prompt
                                        else (prompt or "<no user message>")[:120]),
                "completion_content": content,
                "completion_labels": _canonical_json(content),
                "gold_labels": json.dumps(labels, ensure_ascii=False),
            })
        frames[split] = pd.DataFrame.from_records(records, columns=_SPLIT_COLUMNS)
    return frames


_SPLIT_COLUMNS = ["id", "split", "text", "text_words", "text_also_in_split", "n_keywords",
                  "n_uris", "labels_not_pref_en", "uris_not_in_thesaurus", "label_not_pref_of_uri",
                  "duplicate_keywords", "micro_thesaurus", "prompt_without_text",
                  "completion_content", "completion_labels", "gold_labels"]


def _text(row: dict) -> str | None:
    text = row.get("text") if isinstance(row, dict) else None
    return text if isinstance(text, str) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _norm_ws(text: str | None) -> str:
    return " ".join((text or "").split())


def _joined(values) -> str | None:
    values = list(values)
    return "; ".join(values) if values else None


def _message_content(messages: Any, role: str) -> str | None:
    """Content of the single `role` message of a chat list, None if the shape is wrong."""
    if (isinstance(messages, list) and len(messages) == 1 and isinstance(messages[0], dict)
            and messages[0].get("role") == role and isinstance(messages[0].get("content"), str)):
        return messages[0]["content"]
    return None


def _canonical_json(content: str | None) -> str | None:
    """Re-dump parsed JSON so formatting (spaces, escapes) does not count as a difference."""
    if content is None:
        return None
    try:
        return json.dumps(json.loads(content), ensure_ascii=False)
    except ValueError:
        return None


# ---------------------------------------------------------------- the dvc.yaml stage

def run(cfg: "Config") -> ContractReport:
    """Stage `tagger_validate`: the splits' contract; a violation stops the pipeline here."""
    from ..core.log import get_logger
    from . import paths

    s = cfg.tagger.synth
    expected = {"train": s.n_train, "val": s.n_val, "test": s.n_test}
    report = check_splits(paths.SFT_DIR, pd.read_parquet(paths.CONCEPTS), cfg.tagger.contracts,
                          expected, paths.CONTRACTS_DIR)  # writes <dir>/splits/; raises on failure
    get_logger("contracts").info("%d expectations passed; report %s", len(report.results), report.html_path)
    # The report pages carry timestamps; this summary does not, so training (which depends on it)
    # reruns only when the contract's outcome changes, not whenever a threshold is edited.
    from ..core.io import write_json
    write_json(paths.METRICS_CONTRACTS, {"expectations": len(report.results),
                                         "failed": len(report.failures)})
    return report
