"""Data contracts (Great Expectations) on the tiny thesaurus and small hand-built splits.

Each violation test breaks exactly one thing in an otherwise valid data set and checks that the
expectation guarding it is the one named in the error (and that the others still pass)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tagflow.core.contracts import ContractError, ContractReport, Outcome, summarize
from tagflow.core.io import write_jsonl
from tagflow.tagger.config import ContractsConfig
from tagflow.tagger.contracts import check_splits
from tagflow.thesaurus import parse_skos, write_table
from tagflow.thesaurus.contracts import check_concepts

TINY = Path(__file__).resolve().parents[1] / "data" / "tiny.ttl"
T = "http://example.org/thes/"
CFG = ContractsConfig(min_keywords=2, max_keywords=3, min_text_words=8)
COUNTS = {"train": 4, "val": 2, "test": 2}
# Concept sets per example, cycled: every set is a valid 2-3 keyword annotation.
CONCEPT_SETS = [["c2", "c5"], ["c7", "c8", "c9"], ["c3", "c6"], ["c1", "c4", "c5"]]


@pytest.fixture(scope="module")
def concepts() -> pd.DataFrame:
    return parse_skos(TINY, ["en", "fr"])


def make_row(concepts: pd.DataFrame, split: str, i: int, uris: list[str]) -> dict:
    """A valid SFT row in the format synth writes, gold keywords = prefLabels of `uris`."""
    pref = dict(zip(concepts["uri"], concepts["pref_en"]))
    micro = dict(zip(concepts["uri"], concepts["micro_thesaurus"]))
    labels = [pref[u] for u in uris]
    text = (f"Document {i} of the {split} split is a short report about "
            + ", ".join(labels).lower() + " in several regions of the world.")
    return {
        "id": f"{split}-{i:04d}", "text": text, "uris": uris, "labels": labels,
        "micro_thesaurus": micro[uris[0]],
        "prompt": [{"role": "user",
                    "content": f"Extract UNESCO Thesaurus keywords from this text:\n\n{text}"}],
        "completion": [{"role": "assistant", "content": json.dumps(labels)}],
    }


def valid_splits(concepts: pd.DataFrame) -> dict[str, list[dict]]:
    return {split: [make_row(concepts, split, i, [T + c for c in CONCEPT_SETS[i % 4]])
                    for i in range(n)] for split, n in COUNTS.items()}


def write_splits(directory: Path, splits: dict[str, list[dict]]) -> Path:
    for split, rows in splits.items():
        write_jsonl(directory / f"{split}.jsonl", rows)
    return directory


def failing(exc: ContractError) -> set[tuple[str, str, str]]:
    return {(o.suite, o.expectation, o.column) for o in exc.report.failures}


def run_splits(tmp_path: Path, concepts: pd.DataFrame, splits, counts=COUNTS) -> ContractReport:
    return check_splits(write_splits(tmp_path / "sft", splits), concepts, CFG, counts,
                        tmp_path / "docs")


# ---------------------------------------------------------------- concept table

def test_tiny_concept_table_passes_and_writes_data_docs(concepts, tmp_path):
    report = check_concepts(concepts, tmp_path / "docs", min_micro_thesaurus_share=1.0)
    assert report.success and report.failures == []
    names = {(o.expectation, o.column) for o in report.results}
    assert {("expect_column_values_to_be_unique", "uri"),
            ("expect_column_values_to_be_unique", "pref_en"),
            ("expect_column_values_to_be_null", "dangling_broader")} <= names
    assert report.html_path == tmp_path / "docs" / "concepts" / "report.html"
    page = report.html_path.read_text()
    assert "PASSED" in page and "expect_column_values_to_be_unique" in page
    assert "<script" not in page and "https://" not in page  # readable offline
    assert report.data_docs_index.exists()  # GX's own Data Docs beside it


def test_concept_table_read_back_from_parquet_passes(concepts, tmp_path):
    # Parquet returns list columns as numpy arrays: the link checks must still see the URIs.
    write_table(concepts, tmp_path / "concepts.parquet")
    table = pd.read_parquet(tmp_path / "concepts.parquet")
    assert check_concepts(table, tmp_path / "docs").success


def test_dangling_broader_uri_fails(concepts, tmp_path, caplog):
    table = concepts.copy()
    row = table.index[table["uri"] == T + "c4"][0]
    table.at[row, "broader"] = [T + "c1", T + "nowhere"]
    with pytest.raises(ContractError) as err:
        check_concepts(table, tmp_path / "docs")
    assert failing(err.value) == {
        ("concepts", "expect_column_values_to_be_null", "dangling_broader")}
    message = str(err.value)
    assert "expect_column_values_to_be_null(dangling_broader)" in message
    assert T + "nowhere" in message and T + "c4" in message  # the bad URI and the row holding it
    assert "expect_column_values_to_be_null(dangling_broader)" in caplog.text  # logged for the stage log
    page = err.value.report.html_path.read_text()
    assert "FAILED (1 of" in page and "dangling_broader" in page and "nowhere" in page


def test_duplicate_and_empty_labels_and_uris_fail(concepts, tmp_path):
    table = concepts.copy()
    table.loc[table["uri"] == T + "c9", "pref_en"] = "Museums"
    table.loc[table["uri"] == T + "c6", "pref_en"] = "  "
    table.loc[table["uri"] == T + "c8", "uri"] = T + "c7"
    with pytest.raises(ContractError) as err:
        check_concepts(table, tmp_path / "docs")
    assert {("concepts", "expect_column_values_to_be_unique", "pref_en"),
            ("concepts", "expect_column_values_to_match_regex", "pref_en"),
            ("concepts", "expect_column_values_to_be_unique", "uri")} <= failing(err.value)


def test_empty_concept_table_fails(concepts, tmp_path):
    with pytest.raises(ContractError) as err:
        check_concepts(concepts.iloc[:0], tmp_path / "docs")
    assert ("concepts", "expect_table_row_count_to_be_between", "") in failing(err.value)
    assert "observed 0" in str(err.value)


def test_micro_thesaurus_share_below_threshold_fails(concepts, tmp_path):
    table = concepts.copy()
    table.loc[table.index[:5], "micro_thesaurus"] = ""
    assert check_concepts(table, tmp_path / "docs").success  # share check is opt-in
    with pytest.raises(ContractError) as err:
        check_concepts(table, tmp_path / "docs", min_micro_thesaurus_share=0.9)
    assert failing(err.value) == {
        ("concepts", "expect_column_proportion_of_non_null_values_to_be_between",
         "micro_thesaurus_or_null")}


# ---------------------------------------------------------------- SFT splits

def test_valid_splits_pass(concepts, tmp_path):
    report = run_splits(tmp_path, concepts, valid_splits(concepts))
    assert report.success, summarize(report)
    assert {o.suite for o in report.results} == {"splits.train", "splits.val", "splits.test",
                                                 "splits.all"}
    site = tmp_path / "docs" / "splits"
    pages = sorted(p.relative_to(site).as_posix() for p in (site / "validations").rglob("*.html"))
    assert len(pages) == 4  # one GX Data Docs page per validated suite...
    summary = report.html_path.read_text()
    assert all(f'href="{p}"' in summary for p in pages)  # ...each linked from the summary


def test_rerun_replaces_the_report(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["train"][0]["text"] = ""
    with pytest.raises(ContractError):
        run_splits(tmp_path, concepts, splits)
    report = run_splits(tmp_path, concepts, valid_splits(concepts))
    assert "PASSED" in report.html_path.read_text()
    # No page of the failed run is left behind to be mistaken for the current one.
    assert len(list((tmp_path / "docs" / "splits" / "validations").rglob("*.html"))) == 4


def test_wrong_row_count_fails(concepts, tmp_path):
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, valid_splits(concepts), {**COUNTS, "val": 3})
    assert failing(err.value) == {("splits.val", "expect_table_row_count_to_equal", "")}
    assert "observed 2" in str(err.value)


def test_empty_text_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["train"][1]["text"] = "   \n "
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    failed = failing(err.value)
    assert ("splits.train", "expect_column_values_to_match_regex", "text") in failed
    assert ("splits.train", "expect_column_values_to_be_between", "text_words") in failed
    assert "train-0001" in str(err.value)
    page = err.value.report.html_path.read_text()  # the report is written before raising
    assert "expect_column_values_to_match_regex" in page and "train-0001" in page


def test_short_text_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["test"][0]["text"] = "Museums and heritage."
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert ("splits.test", "expect_column_values_to_be_between", "text_words") in failing(err.value)


def test_alt_label_as_gold_label_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    row = splits["train"][0]  # c2 "Higher education", whose altLabel is "Tertiary education"
    row["labels"][0] = "Tertiary education"
    row["completion"][0]["content"] = json.dumps(row["labels"])
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.train", "expect_column_values_to_be_null", "labels_not_pref_en"),
        ("splits.train", "expect_column_values_to_be_null", "label_not_pref_of_uri")}
    assert "Tertiary education" in str(err.value)


def test_label_of_another_concept_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["val"][0]["uris"] = list(reversed(splits["val"][0]["uris"]))  # labels now misaligned
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.val", "expect_column_values_to_be_null", "label_not_pref_of_uri")}


def test_unknown_uri_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["test"][1]["uris"][0] = T + "c99"
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert ("splits.test", "expect_column_values_to_be_null", "uris_not_in_thesaurus") \
        in failing(err.value)
    assert T + "c99" in str(err.value)


def test_text_in_two_splits_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    # Same document up to whitespace: still a leak from train into test.
    splits["test"][0]["text"] = "  " + splits["train"][2]["text"].replace(" ", "\n  ", 3)
    splits["test"][0]["prompt"][0]["content"] = splits["test"][0]["text"]
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.train", "expect_column_values_to_be_null", "text_also_in_split"),
        ("splits.test", "expect_column_values_to_be_null", "text_also_in_split")}
    assert "train-0002: 'test'" in str(err.value)


def test_too_many_keywords_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    uris = [T + c for c in ("c1", "c4", "c5", "c6")]
    splits["train"][3] = make_row(concepts, "train", 3, uris)
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.train", "expect_column_values_to_be_between", "n_keywords")}
    assert "train-0003: 4" in str(err.value)


def test_malformed_completion_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["val"][1]["completion"][0]["content"] = "Museums, Cultural heritage"  # not JSON
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.val", "expect_column_values_to_be_json_parseable", "completion_content"),
        ("splits.val", "expect_column_pair_values_to_be_equal", "completion_labels, gold_labels")}


def test_completion_differing_from_labels_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["train"][0]["completion"][0]["content"] = json.dumps(splits["train"][0]["labels"][:1])
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.train", "expect_column_pair_values_to_be_equal", "completion_labels, gold_labels")}


def test_prompt_of_another_document_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["train"][1]["prompt"] = splits["train"][2]["prompt"]
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {
        ("splits.train", "expect_column_values_to_be_null", "prompt_without_text")}


def test_duplicate_id_across_splits_fails(concepts, tmp_path):
    splits = valid_splits(concepts)
    splits["test"][0]["id"] = "train-0000"
    with pytest.raises(ContractError) as err:
        run_splits(tmp_path, concepts, splits)
    assert failing(err.value) == {("splits.all", "expect_column_values_to_be_unique", "id")}


def test_missing_split_file_names_it(concepts, tmp_path):
    splits = valid_splits(concepts)
    del splits["val"]
    with pytest.raises(ContractError, match=r"val\.jsonl"):
        run_splits(tmp_path, concepts, splits)


def test_summarize_lists_one_line_per_failure():
    report = ContractReport(success=False, results=[
        Outcome("splits.val", "expect_table_row_count_to_equal", "", False, "observed 2"),
        Outcome("splits.val", "expect_column_values_to_be_unique", "id", True, "0 of 2 rows"),
        Outcome("splits.all", "expect_column_values_to_be_unique", "id", False, "1 of 8 rows")])
    assert summarize(report).splitlines() == [
        "splits.val: expect_table_row_count_to_equal failed: observed 2",
        "splits.all: expect_column_values_to_be_unique(id) failed: 1 of 8 rows"]
