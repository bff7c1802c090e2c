"""Tag mode (the recipe's [tag1][tag2][tag3] task): the validity check on good answers and on each
kind of bad one, the text sources (JSONL, CSV, Reuters SGML folder) and their hash-ordered split
into pair and held-out evaluation texts, the mode's config checks, and the parser the pairs and
the evaluation pick by mode."""
from __future__ import annotations

import dataclasses
import json

import pytest

from tagflow.core.errors import ConfigError, DataError
from tagflow.tagger.config import PairsConfig, TagModeConfig
from tagflow.tagger.pairs import answer_parser
from tagflow.tagger.prefeval import table, wilson
from tagflow.tagger.tagmode import check_tags, cut, problem_counts, read_texts, split_texts, tag_rows

LIMITS = TagModeConfig()   # 3 tags, 3 words and 30 characters each


@pytest.mark.parametrize("raw, tags", [
    ("[economy][inflation][interest rates]", ["economy", "inflation", "interest rates"]),
    ("  [Volcanoes]\n", ["Volcanoes"]),
    ("[grain] [exports]", ["grain", "exports"]),                    # spaces between groups are allowed
    ("[ wheat harvest ][drought]", ["wheat harvest", "drought"]),   # tags are stripped
    ("[central bank policy]", ["central bank policy"]),             # exactly 3 words
    ("[tagging][tag cloud]", ["tagging", "tag cloud"]),             # "tag" inside a real tag is fine
    ("[" + "x" * 30 + "]", ["x" * 30]),                              # exactly 30 characters
])
def test_valid_answers(raw, tags):
    assert check_tags(raw, LIMITS) == (tags, None)


@pytest.mark.parametrize("raw, problem", [
    ("economy, inflation", "malformed"),                            # no brackets at all
    ('["economy", "inflation"]', "not_one_tag"),                    # the keyword mode's JSON is not a tag answer
    ("[economy, inflation]", "not_one_tag"),                        # a list in one bracket
    ("[economy; inflation]", "not_one_tag"),
    ("[tag1][tag2][tag3]", "placeholder"),                          # the prompt's template echoed
    ("[inflation][Tag 2]", "placeholder"),
    ("Tags: [economy][inflation]", "malformed"),                    # chatter before
    ("[economy][inflation] Hope this helps!", "malformed"),         # chatter after
    ("[economy] and [inflation]", "malformed"),                     # words between groups
    ("[economy][inflation", "malformed"),                           # unclosed
    ("[[economy]]", "malformed"),                                   # nested
    ("[economy]\n[inflation]", "malformed"),                        # groups on separate lines
    ("", "malformed"),
    ("[economy][][inflation]", "empty_tag"),
    ("[   ]", "empty_tag"),
    ("[a][b][c][d]", "too_many_tags"),
    ("[1][A]", "not_a_word"),                                       # what a short IPO run learned to answer
    ("[inflation][G7]", "not_a_word"),                              # one letter is not a word
    ("[the history of central banking]", "tag_too_long"),          # 5 words
    ("[" + "x" * 31 + "]", "tag_too_long"),                          # 31 characters
    ("[Economy][inflation][economy]", "duplicate_tag"),             # case does not make a new tag
])
def test_each_kind_of_invalid_answer_is_named(raw, problem):
    assert check_tags(raw, LIMITS) == (None, problem)


def test_limits_are_parameters():
    loose = TagModeConfig(max_tags=5, max_tag_words=6, max_tag_chars=60, min_tag_letters=1)
    assert check_tags("[a][b][c][d]", loose)[0] == ["a", "b", "c", "d"]
    assert check_tags("[the history of central banking]", loose)[0] == ["the history of central banking"]


def test_problem_counts_cover_every_answer():
    counts = problem_counts(["[ab][cd]", "oops", "[ab][AB]", "[x][y][z][w]", "[qq]", "[7]"], LIMITS)
    assert counts == {"valid": 2, "malformed": 1, "empty_tag": 0, "too_many_tags": 1, "not_one_tag": 0,
                      "placeholder": 0, "not_a_word": 1, "tag_too_long": 0, "duplicate_tag": 1}


def test_the_parser_follows_the_mode():
    keywords, tags = PairsConfig(max_keywords=3), PairsConfig(mode="tags")
    assert answer_parser(keywords)('["Education", "Schools"]') == ["Education", "Schools"]
    assert answer_parser(keywords)("[Education][Schools]") is None
    assert answer_parser(tags)("[Education][Schools]") == ["Education", "Schools"]
    assert answer_parser(tags)('["Education", "Schools"]') is None


def test_mode_and_limits_are_checked():
    with pytest.raises(ConfigError, match="tagger.pairs.mode"):
        PairsConfig(mode="labels")
    with pytest.raises(ConfigError, match="max_tags"):
        TagModeConfig(max_tags=0)
    with pytest.raises(ConfigError, match="{text}"):
        TagModeConfig(prompt="Give tags:")


# ---------------------------------------------------------------- texts

def write_jsonl(path, texts):
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return path


def test_sources_jsonl_csv_and_reuters_folder(tmp_path):
    import pandas as pd

    from tests.topics_sgml import corpus, write_distribution

    assert read_texts(write_jsonl(tmp_path / "t.jsonl", ["one text", "  ", "two"])) == ["one text", "two"]
    pd.DataFrame({"text": ["a page", None, "another page"], "score": [3, 2, 4]}).to_csv(tmp_path / "p.csv", index=False)
    assert read_texts(tmp_path / "p.csv") == ["a page", "another page"]
    write_distribution(tmp_path / "reuters", corpus(n_per_topic=2))
    bodies = read_texts(tmp_path / "reuters")
    assert len(bodies) >= 12 and all("Reuter" not in b[-8:] for b in bodies)   # the sign-off is cut


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.jsonl", "not found"),
    (lambda p: (p / "t.txt").write_text("x") and p / "t.txt", "Reuters SGML folder, a .csv or a .jsonl"),
    (lambda p: (p / "t.csv").write_text("body\nx\n") and p / "t.csv", "`text` column"),
    (lambda p: (p / "t.jsonl").write_text('{"body": "x"}\n') and p / "t.jsonl", "string `text` field"),
])
def test_bad_sources_are_named(tmp_path, make, message):
    with pytest.raises(DataError, match=message):
        read_texts(make(tmp_path))


def test_split_is_disjoint_and_independent_of_file_order():
    texts = [f"text number {i}" for i in range(10)] + ["text number 3"]   # a duplicate counts once
    pairs, held = split_texts(texts, 3)
    assert len(held) == 3 and len(pairs) == 7 and not set(pairs) & set(held)
    assert split_texts(list(reversed(texts)), 3) == (pairs, held)
    with pytest.raises(DataError, match="eval_texts"):
        split_texts(texts, 10)


def test_rows_cut_long_texts_and_respect_max_prompts(tmp_path):
    texts = [f"story {i} " + "word " * 50 for i in range(6)]
    cfg = PairsConfig(mode="tags", max_prompts=2,
                      tags=TagModeConfig(texts=str(write_jsonl(tmp_path / "t.jsonl", texts)), eval_texts=2,
                                         max_text_chars=40))
    rows, held = tag_rows(cfg, "pairs"), tag_rows(cfg, "eval")
    assert len(rows) == 2 and len(held) == 2 and not {r["id"] for r in rows} & {r["id"] for r in held}
    row = rows[0]
    assert len(row["text"]) <= 40 and not row["text"].endswith(" ")
    assert row["prompt"] == [{"role": "user", "content": cfg.tags.prompt.format(text=row["text"])}]
    assert len(tag_rows(dataclasses.replace(cfg, max_prompts=0), "pairs")) == 4


def test_cut_ends_at_a_word():
    assert cut("short", 10) == "short"
    assert cut("alpha beta gamma", 12) == "alpha beta"
    assert cut("x" * 20, 5) == "xxxxx"


# ---------------------------------------------------------------- evaluation figures

def test_wilson_interval_stays_inside_0_1_and_contains_the_rate():
    assert wilson(0, 0) is None
    low, high = wilson(0, 20)
    assert low == 0.0 and 0.1 < high < 0.2          # 0/20 is not "certainly 0%"
    low, high = wilson(20, 20)
    assert high == 1.0 and 0.8 < low < 0.9
    low, high = wilson(17, 20)
    assert low < 0.85 < high


def test_table_takes_the_tags_set_without_thesaurus_metrics():
    entry = {"test": {"valid_rate": 0.5, "cosine_mean": 0.3, "cosine_se": 0.01, "tagger": {"f1_doc": 0.2}},
             "tags": {"valid_rate": 0.9, "cosine_mean": 0.4, "cosine_se": 0.02}}
    out = table({"sft": entry})
    assert out["tags/valid_rate"] == {"sft": 0.9} and out["test/f1_doc"] == {"sft": 0.2}
    assert "tags/f1_doc" not in out
