"""The annotation table's Great Expectations contract, run for real: a clean table passes; each
broken property (score range, empty text, a page in two splits, a missing language, a thin split)
fails and is named."""
from __future__ import annotations

import pandas as pd
import pytest

from tagflow.core.contracts import ContractError
from tagflow.edu.config import ContractsConfig
from tagflow.edu.contracts import check_table
from tagflow.edu.data import page_id

CFG = ContractsConfig(min_rows_per_split=2, min_text_chars=20, max_score=5.0)


def table() -> pd.DataFrame:
    rows = []
    for n in range(12):
        text = f"Page {n}: photosynthesis turns light into chemical energy in plants."
        rows.append({"id": page_id(text), "text": text, "language": "en", "score": float(n % 6),
                     "annotator": "llama-3.3-70b", "source": "en_llm",
                     "split": ("train", "val", "test")[n % 3]})
    return pd.DataFrame(rows)


def failures(frame: pd.DataFrame, tmp_path) -> set[tuple[str, str]]:
    with pytest.raises(ContractError) as caught:
        check_table(frame, CFG, tmp_path / "site")
    assert (tmp_path / "site" / "report.html").exists()
    return {(o.expectation, o.column) for o in caught.value.report.failures}


def test_clean_table_passes(tmp_path):
    report = check_table(table(), CFG, tmp_path / "site")
    assert report.success and len(report.results) == 15
    assert "PASSED" in (tmp_path / "site" / "report.html").read_text()


def test_score_out_of_range(tmp_path):
    frame = table()
    frame.loc[2, "score"] = 6.5
    assert failures(frame, tmp_path) == {("expect_column_values_to_be_between", "score")}


def test_empty_text(tmp_path):
    frame = table()
    frame.loc[1, "text"] = "   "
    assert ("expect_column_values_to_match_regex", "text") in failures(frame, tmp_path)


def test_page_in_two_splits(tmp_path):
    frame = table()
    dup = frame.iloc[[0]].assign(split="test")
    got = failures(pd.concat([frame, dup], ignore_index=True), tmp_path)
    assert ("expect_column_values_to_be_null", "id_in_other_split") in got
    assert ("expect_column_values_to_be_unique", "id") in got


def test_missing_language_and_thin_split(tmp_path):
    frame = table()
    frame.loc[3, "language"] = None  # a train page
    frame = frame[~((frame["split"] == "val") & (frame.index > 2))]  # val keeps 1 page
    got = failures(frame, tmp_path)
    assert ("expect_column_values_to_not_be_null", "language") in got
    assert ("expect_column_values_to_be_between", "pages") in got
