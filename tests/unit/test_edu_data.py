"""edu annotations: each source into the common schema, duplicates merged, stratified splits by
seed, fetch from an official URL else the mirror, pages read for scoring; bad input is a DataError."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tagflow.core.errors import ConfigError, DataError
from tagflow.edu.config import DataConfig, EduConfig, check
from tagflow.edu.data import (assign_splits, build_table, fetch, int_score, load_source, page_id,
                              read_pages)


def write_sets(root, n_en=30, n_da=40):
    """Tiny CSVs in the mirror layout: English (score 0-5, reasoning), Danish human and LLM (int_score)."""
    (root / "fineweb-edu-llama33").mkdir(parents=True)
    (root / "fineweb-c-danish").mkdir(parents=True)
    pd.DataFrame({"text": [f"English page number {i} about topic {i % 7}." for i in range(n_en)],
                  "score": [2 + i % 4 for i in range(n_en)], "reasoning": "x", "decision": "KEEP",
                  "error": None}).to_csv(root / "fineweb-edu-llama33/annotations.csv", index=False)
    pd.DataFrame({"text": [f"Dansk side {i} om emne {i % 5}." for i in range(n_da)],
                  "int_score": [i % 3 for i in range(n_da)], "educational_value_labels": "['None']",
                  "problematic_content_label_present": False,
                  "problematic_content_label_agreement": 1.0}).to_csv(
        root / "fineweb-c-danish/fineweb-c_danish.csv", index=False)
    texts = [f"LLM-vurderet dansk side {i}." for i in range(n_da)]
    scores = [i % 4 for i in range(n_da)]
    # the same page twice with different scores, and once more identical: merged into one (mean)
    texts += [texts[0], texts[1]]
    scores += [3, scores[1]]
    pd.DataFrame({"text": texts, "int_score": scores}).to_csv(
        root / "fineweb-c-danish/danish_gemini_labelled.csv", index=False)
    return root


@pytest.fixture
def raw(tmp_path):
    return write_sets(tmp_path / "raw")


def test_int_score_is_round_of_clamp():
    assert int_score([-0.7, 0.4, 0.6, 2.5, 3.5, 4.49, 7.2]).tolist() == [0, 0, 1, 2, 4, 4, 5]


def test_each_source_in_the_common_schema(raw):
    en = load_source("en_llm", raw)
    assert set(en.columns) == {"id", "text", "score", "language", "annotator", "source"}
    assert (en["language"] == "en").all() and (en["annotator"] == "llama-3.3-70b").all()
    assert en["score"].tolist()[:4] == [2, 3, 4, 5]
    da = load_source("da_llm", raw)
    assert len(da) == 40  # 42 rows, two duplicate pages merged
    first = da.set_index("text").loc["LLM-vurderet dansk side 0.", "score"]
    assert first == pytest.approx(1.5)  # scored 0 and 3: the mean
    assert da.loc[da["text"] == "LLM-vurderet dansk side 0.", "id"].item() == page_id("LLM-vurderet dansk side 0.")
    assert (load_source("da_human", raw)["annotator"] == "human").all()


def test_splits_are_stratified_disjoint_and_seeded(raw):
    cfg = DataConfig(raw_dir=str(raw), seed=3)
    table = build_table(cfg)
    assert sorted(table["source"].unique()) == ["da_human", "da_llm", "en_llm"]
    assert table["id"].is_unique
    for source, part in table.groupby("source"):
        counts = part["split"].value_counts()
        assert counts["val"] >= 0.15 * len(part) and counts["test"] >= 0.15 * len(part), source
        # every score class of a source reaches its test split (stratified)
        classes = set(int_score(part["score"]))
        assert set(int_score(part[part["split"] == "test"]["score"])) == classes, source
    again = build_table(cfg)
    assert table["split"].tolist() == again["split"].tolist()
    other = build_table(DataConfig(raw_dir=str(raw), seed=4))
    assert table["split"].tolist() != other["split"].tolist()


def test_assign_splits_keeps_a_lone_page_in_train():
    frame = pd.DataFrame({"score": [0.0] * 10 + [5.0]})
    split = assign_splits(frame, seed=0, val_fraction=0.2, test_fraction=0.2)
    assert split.iloc[-1] == "train"
    assert split.iloc[:10].value_counts().to_dict() == {"train": 6, "val": 2, "test": 2}


def test_max_per_source_and_cross_source_duplicates(raw):
    extra = pd.read_csv(raw / "fineweb-c-danish/fineweb-c_danish.csv")
    extra.loc[0, "text"] = "LLM-vurderet dansk side 5."  # also in da_llm, which comes first
    extra.to_csv(raw / "fineweb-c-danish/fineweb-c_danish.csv", index=False)
    table = build_table(DataConfig(raw_dir=str(raw), sources=["da_llm", "da_human"]))
    assert (table["text"] == "LLM-vurderet dansk side 5.").sum() == 1
    assert len(table[table["source"] == "da_human"]) == 39
    small = build_table(DataConfig(raw_dir=str(raw), max_per_source=12))
    assert small.groupby("source").size().tolist() == [12, 12, 12]


def test_missing_or_malformed_source_is_a_data_error(tmp_path, raw):
    with pytest.raises(DataError, match="annotation set 'en_llm' not found"):
        load_source("en_llm", tmp_path / "nowhere")
    (raw / "fineweb-edu-llama33/annotations.csv").write_text("body,grade\nx,1\n")
    with pytest.raises(DataError, match="needs columns text and score"):
        load_source("en_llm", raw)


def test_fetch_copies_the_mirror_when_no_url_answers(tmp_path, raw):
    dest = tmp_path / "data" / "edu"
    cfg = DataConfig(raw_dir=str(dest), urls={"en_llm": "http://127.0.0.1:9/annotations.csv"})
    got = fetch(cfg, mirror=str(raw))
    assert got == {s: str(raw / p) for s, p in [
        ("en_llm", "fineweb-edu-llama33/annotations.csv"), ("da_llm", "fineweb-c-danish/danish_gemini_labelled.csv"),
        ("da_human", "fineweb-c-danish/fineweb-c_danish.csv")]}
    assert (dest / "fineweb-edu-llama33/annotations.csv").read_bytes() == \
        (raw / "fineweb-edu-llama33/annotations.csv").read_bytes()
    assert fetch(cfg, mirror=str(raw)) == {s: "present" for s in cfg.sources}
    with pytest.raises(DataError, match=r"could not obtain annotation set 'en_llm'.*official URL.*mirror"):
        fetch(DataConfig(raw_dir=str(tmp_path / "other"), urls=cfg.urls), mirror=str(tmp_path / "empty"))


def test_read_pages_jsonl_and_csv(tmp_path):
    jsonl = tmp_path / "pages.jsonl"
    jsonl.write_text('{"id": "a", "text": "one"}\n{"text": "two"}\n')
    assert read_pages(jsonl) == [{"id": "a", "text": "one"}, {"id": "2", "text": "two"}]
    csv = tmp_path / "pages.csv"
    pd.DataFrame({"id": ["007", "8"], "text": ["x, with a comma", "y"]}).to_csv(csv, index=False)
    assert read_pages(csv) == [{"id": "007", "text": "x, with a comma"}, {"id": "8", "text": "y"}]


@pytest.mark.parametrize("name, content, message", [
    ("pages.jsonl", '{"id": 1}\n', "page 1 has no 'text'"),
    ("pages.jsonl", '{"text": "a"}\n{"text": "  "}\n', "page 2 has no 'text'"),
    ("pages.jsonl", '{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n', "page id 'x' occurs more than once"),
    ("pages.jsonl", "not json\n", "not valid JSON"),
    ("pages.txt", "hello", "expected a .jsonl or .csv"),
    ("pages.csv", "body\nx\n", "page 1 has no 'text'"),
])
def test_read_pages_refuses_bad_input(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        read_pages(path)


def test_config_check_names_what_is_wrong():
    cfg = EduConfig()
    check(cfg)
    cfg.data.sources = ["en_llm", "klingon"]
    with pytest.raises(ConfigError, match="edu.data.sources"):
        check(cfg)
    cfg = EduConfig()
    cfg.train.setups = {"x": {"encoder": "nope", "train": ["en_llm"]}}
    with pytest.raises(ConfigError, match=r"edu.train.setups.x: encoder must be one of"):
        check(cfg)
    cfg = EduConfig()
    cfg.train.heads = ["linear", "forest"]
    with pytest.raises(ConfigError, match="edu.train.heads"):
        check(cfg)
    cfg = EduConfig()
    cfg.embed.runtime = "onnx-fp16"
    with pytest.raises(ConfigError, match=r"edu.embed.runtime: 'onnx-fp16'; expected torch \| torch-compile \| onnx-int8"):
        check(cfg)
    cfg = EduConfig()
    cfg.registry.models = {"fr": "fineweb-edu-fr"}
    with pytest.raises(ConfigError, match="unknown setup 'fr'"):
        check(cfg)
    assert np.isclose(EduConfig().data.val_fraction, 0.2)
