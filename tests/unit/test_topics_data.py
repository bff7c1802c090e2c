"""Reuters-21578 SGML -> table -> splits and label sets, on a tiny distribution written here."""
from __future__ import annotations

import numpy as np
import pytest

from tagflow.core.errors import DataError
from tagflow.topics.config import DataConfig
from tagflow.topics.data import build_table, document_text, label_matrix
from tagflow.topics.reuters import parse_sgml, read_dir
from tests.topics_sgml import corpus, story, write_distribution


def test_parse_one_story_with_the_formats_quirks():
    [row] = parse_sgml(story(7, ["grain", "crude"], title="WHEAT &amp; OIL &lt;XYZ&gt;"))
    assert row["id"] == 7 and row["topics"] == ["grain", "crude"]
    assert (row["lewissplit"], row["topics_attr"], row["text_type"]) == ("TRAIN", "YES", "NORM")
    assert row["title"] == "WHEAT & OIL <XYZ>"
    assert row["body"].startswith("wheat corn") and "café 7" in row["body"]
    assert not row["body"].endswith("Reuter") and "\x03" not in row["body"]


def test_brief_and_unprocessed_stories():
    brief, unproc = parse_sgml(story(1, ["earn"], text_type="BRIEF", body="")
                               + story(2, ["earn"], text_type="UNPROC", body="M-1 up 2.1 &#22; bln"))
    assert brief["text_type"] == "BRIEF" and brief["title"] and brief["body"] == ""
    assert unproc["text_type"] == "UNPROC" and " ".join(unproc["body"].split()) == "M-1 up 2.1 bln"
    assert document_text(brief["title"], brief["body"]) == brief["title"]


def test_read_dir_reads_latin1_files_and_tolerates_an_emptied_file(tmp_path):
    folder = write_distribution(tmp_path / "raw", corpus(5))
    table = read_dir(folder)
    assert len(table) == 33 and table["id"].is_monotonic_increasing
    assert table["body"].str.contains("café").all()   # latin-1 é decoded


def test_read_dir_errors(tmp_path):
    with pytest.raises(DataError, match="no reut2-\\*.sgm files"):
        read_dir(tmp_path)
    (tmp_path / "reut2-000.sgm").write_text("<!DOCTYPE lewis>\n")
    with pytest.raises(DataError, match="no <REUTERS> documents"):
        read_dir(tmp_path)
    (tmp_path / "reut2-000.sgm").write_text(story(1, ["earn"]) + story(1, ["acq"]))
    with pytest.raises(DataError, match="NEWID 1 occurs more than once"):
        read_dir(tmp_path)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return read_dir(write_distribution(tmp_path_factory.mktemp("raw"), corpus(20)))


def test_modapte_training_part_split_by_seed(raw):
    table, info = build_table(raw, DataConfig(val_fraction=0.25, seed=3))
    assert len(table) == 120                      # TOPICS=YES with a topic, LEWISSPLIT=TRAIN only
    assert (table["split"] == "validation").sum() == 30 and set(table["split"]) == {"train", "validation"}
    assert info["labels"] == ["acq", "crude", "earn", "grain"] and info["test_split"] == "none"
    again, _ = build_table(raw, DataConfig(val_fraction=0.25, seed=3))
    other, _ = build_table(raw, DataConfig(val_fraction=0.25, seed=4))
    assert list(again["split"]) == list(table["split"]) != list(other["split"])


def test_top10_and_limits(raw):
    table, info = build_table(raw, DataConfig(label_set="top10", max_train_docs=10, max_val_docs=5))
    assert info["top10"] == info["labels"] == ["acq", "crude", "earn", "grain"]  # only 4 topics exist
    assert table["split"].value_counts().to_dict() == {"train": 10, "validation": 5}


def test_test_split_is_a_parameter(tmp_path):
    with_test = read_dir(write_distribution(tmp_path / "full", corpus(20, test=True)))
    table, _ = build_table(with_test, DataConfig(test_split="modapte"))
    assert (table["split"] == "test").sum() == 30
    table, _ = build_table(with_test, DataConfig(test_split="none"))
    assert "test" not in set(table["split"])


def test_modapte_test_split_absent_is_a_clear_error(raw):
    with pytest.raises(DataError, match="no LEWISSPLIT=\"TEST\" documents"):
        build_table(raw, DataConfig(test_split="modapte"))


def test_all_labels_need_a_test_document_when_a_test_split_exists(tmp_path):
    stories = corpus(20, test=True) + [story(900, ["cocoa"])]   # cocoa: training documents only
    raw = read_dir(write_distribution(tmp_path / "raw", stories))
    _, without = build_table(raw, DataConfig(test_split="none"))
    _, with_test = build_table(raw, DataConfig(test_split="modapte"))
    assert "cocoa" in without["labels"] and "cocoa" not in with_test["labels"]


def test_label_matrix():
    Y = label_matrix([["b"], ["a", "c"], ["zzz"]], ["a", "b", "c"])
    assert Y.tolist() == [[False, True, False], [True, False, True], [False, False, False]]
    assert Y.dtype == np.bool_
