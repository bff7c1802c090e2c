"""Tag mode end to end through the pairs stage, with canned generations in place of the SFT
model's samples (sampling is what the e2e and model tests exercise): the smoke fixture's texts,
the real MiniLM encoder for the tag-to-text cosine, format pairs by tag validity, semantic pairs by
cosine, the Great Expectations contract, and the stage's outputs (pairs.jsonl, metrics/pairs.json
with the mode, why samples failed and which texts were used)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tagflow.config import load_config
from tagflow.tagger import pairs as pairs_module
from tagflow.tagger.pairs import build_pairs, check_pairs, score_candidates
from tagflow.tagger.tagmode import parse_tags, tag_rows

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "tag_texts.jsonl"
# Per text (found by a word in it): tags about it. Each text also gets unrelated tags and chatter.
ON_TOPIC = {"interest rate": "[interest rates][inflation]", "Wheat": "[wheat harvest][grain exports]",
            "Volcanoes": "[volcanoes][eruptions]", "cycle lanes": "[cycle lanes][students]",
            "Oil prices": "[oil prices][crude output]", "museum": "[museum][shipwreck finds]",
            "Photosynthesis": "[photosynthesis][plants]", "acquire": "[acquisition][software company]",
            "rain": "[floods][heavy rain]", "Teachers": "[reading][primary schools]"}
OFF_TOPIC = "[football][celebrity gossip]"
CHATTER = "Sure! Here are three tags: news, events, world"


def canned(rows: list[dict]) -> list[list[str]]:
    """k=3 answers per row: on-topic tags, off-topic tags, an invalid answer."""
    out = []
    for row in rows:
        on = next(tags for word, tags in ON_TOPIC.items() if word in row["text"])
        out.append([on, OFF_TOPIC, CHATTER])
    return out


@pytest.fixture(scope="module")
def config():
    cfg = load_config(ROOT / "params.yaml", profile="smoke")
    tags = dataclasses.replace(cfg.tagger.pairs.tags, texts=str(FIXTURE))
    pairs_cfg = dataclasses.replace(cfg.tagger.pairs, mode="tags", k=3, include_gold=True,   # no gold in tag mode
                                    format_share=0.5, balance_margins=False, tags=tags)
    return dataclasses.replace(cfg, tagger=dataclasses.replace(cfg.tagger, pairs=pairs_cfg))


@pytest.fixture(scope="module")
def encoder():
    from tagflow.core.encoders import load_encoder

    return load_encoder("embedded:all-minilm-l6-v2")


def test_tag_mode_pairs_prefer_valid_and_on_topic_tags(config, encoder, tmp_path):
    cfg = config.tagger.pairs
    rows = tag_rows(cfg, "pairs")
    assert len(rows) == 8                                   # 10 fixture texts, 2 held out
    items = score_candidates(rows, canned(rows), cfg, encoder)
    assert all(len(i["candidates"]) == 3 for i in items)   # no gold answer joins in tag mode
    pairs, stats = build_pairs(items, cfg)

    assert stats["valid_rate"] == round(2 / 3, 4) and stats["generations"] == 24
    formats = [p for p in pairs if p["kind"] == "format"]
    semantic = [p for p in pairs if p["kind"] == "semantic"]
    assert len(semantic) == 8 and len(formats) == 8          # format share 0.5: one per semantic pair
    for p in formats:
        assert parse_tags(p["chosen"][0]["content"], cfg.tags) is not None
        assert p["rejected"][0]["content"] == CHATTER
    for p in semantic:   # the real encoder puts each text's own tags above football and gossip
        assert p["rejected"][0]["content"] == OFF_TOPIC, p["chosen"]
        assert p["chosen_cosine"] > p["rejected_cosine"] and "chosen_f1" not in p
        assert p["prompt"][0]["content"].startswith("Give at most three short tags")
    assert check_pairs(pairs, cfg, tmp_path / "contract").success


def test_pairs_stage_in_tag_mode_writes_pairs_and_metrics(config, monkeypatch, tmp_path):
    from tagflow.tagger import sft

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sft, "load_adapter", lambda path: (None, object(), {}))
    monkeypatch.setattr(pairs_module, "sample_answers", lambda tok, model, rows, c: canned(rows))
    stats = pairs_module.run(config)

    written = [json.loads(line) for line in Path("artifacts/pairs/pairs.jsonl").read_text().splitlines()]
    metrics = json.loads(Path("metrics/pairs.json").read_text())
    assert metrics["mode"] == "tags" and metrics["pairs"] == len(written) == stats["pairs"] > 0
    assert metrics["problems"] == {"valid": 16, "malformed": 8, "empty_tag": 0, "too_many_tags": 0,
                                   "not_one_tag": 0, "placeholder": 0, "not_a_word": 0, "tag_too_long": 0,
                                   "duplicate_tag": 0}
    assert metrics["texts"]["count"] == 8 and metrics["texts"]["source"] == str(FIXTURE)
    held_out = {r["id"] for r in tag_rows(config.tagger.pairs, "eval")}
    assert not {p["source_id"] for p in written} & held_out   # evaluation texts are never paired
    assert "agreement" not in metrics                          # no gold, no thesaurus signal


def test_before_after_comparison_adds_the_held_out_tags_set(config, encoder, monkeypatch):
    """prefeval.compare in tag mode, with canned greedy answers: each model also answers the
    held-out texts with the tag instruction; its figures and histogram cosines are of that set,
    while the thesaurus set keeps its tagger metrics (what the registration gate reads)."""
    from tagflow.tagger import evaluate, pipeline, prefeval

    tag_prompt = config.tagger.pairs.tags.prompt

    def answers(model_dir, texts, max_new_tokens, batch_size, prompt=None):
        if prompt != tag_prompt:
            return ['["Education"]'] * len(texts)            # keyword mode: a valid JSON array
        on = [next(t for w, t in ON_TOPIC.items() if w in text) for text in texts]
        return on if model_dir == "after" else [CHATTER] + on[1:]

    monkeypatch.setattr(prefeval, "free_answers", answers)
    monkeypatch.setattr(pipeline.Tagger, "build", classmethod(lambda cls, *a: object()))
    monkeypatch.setattr(evaluate, "evaluate", lambda tagger, rows: ({"f1_doc": 0.25}, [{"id": "d"}]))
    sets = {"test": [{"id": "d", "text": "Schools teach reading.", "uris": []}]}
    report, cosines, predictions = prefeval.compare(config, {"before": "before", "after": "after"}, sets,
                                                    None, encoder)
    held = tag_rows(config.tagger.pairs, "eval")
    assert report["before"]["tags"]["documents"] == report["after"]["tags"]["documents"] == len(held) == 2
    assert report["before"]["tags"]["valid_rate"] == 0.5 and report["after"]["tags"]["valid_rate"] == 1.0
    assert report["before"]["tags"]["problems"]["malformed"] == 1
    assert [len(cosines["before"]), len(cosines["after"])] == [1, 2]       # the tags set's valid answers
    assert report["after"]["test"]["valid_rate"] == 1.0 and report["after"]["test"]["tagger"] == {"f1_doc": 0.25}
    assert predictions["after"] == [{"id": "d"}]
    assert prefeval.table(report)["tags/valid_rate"] == {"before": 0.5, "after": 1.0}
