"""Preference pairs from hand-written candidates: validity, format pairs and their cap, semantic
pairs by cosine with margin bins, the F1 / thesaurus-label signals and their agreement, and the
Great Expectations contract over the pairs."""
from __future__ import annotations

import dataclasses
import json

import pytest

from tagflow.core.contracts import ContractError
from tagflow.core.errors import ConfigError
from tagflow.tagger.config import PairsConfig
from tagflow.tagger.pairs import Candidate, answer_keywords, build_pairs, check_pairs

PROMPT = [{"role": "user", "content": "Extract UNESCO Thesaurus keywords from this text:\n\nSome text."}]


def cand(keywords, cosine=None, raw=None) -> Candidate:
    """A valid answer from its keywords, or an invalid one from raw text."""
    if raw is not None:
        return Candidate(raw, None)
    return Candidate(json.dumps(keywords), list(keywords), cosine)


def item(id_, candidates, uris=()):
    return {"id": id_, "prompt": PROMPT, "uris": list(uris), "candidates": candidates}


def cfg(**kw) -> PairsConfig:
    return dataclasses.replace(PairsConfig(), **kw)


@pytest.mark.parametrize("raw, expected", [
    ('["Education", "Museums"]', ["Education", "Museums"]),
    ('  ["Education"]\n', ["Education"]),
    ('["Education"] and more chatter', None),       # the lenient parse would accept this one
    ('{"keywords": ["Education"]}', None),
    ('[]', None),
    ('["Education", ""]', None),
    ('["Education", 3]', None),
    ('["a", "b", "c", "d"]', None),                 # over the limit of 3
    ('["Education"', None),
])
def test_answer_keywords_is_strict(raw, expected):
    assert answer_keywords(raw, max_keywords=3) == expected


def test_format_pair_chooses_the_best_valid_answer_and_respects_the_cap():
    items = [item("a", [cand(["Education"], 0.4), cand(["Museums"], 0.7), cand(None, raw="Sure! Education")]),
             item("b", [cand(["Art"], 0.5), cand(None, raw='["Art"')])]
    pairs, stats = build_pairs(items, cfg(format_share=1.0))   # no cap: both format pairs
    formats = [p for p in pairs if p["kind"] == "format"]
    assert [p["source_id"] for p in formats] == ["a", "b"]
    assert formats[0]["chosen"] == [{"role": "assistant", "content": '["Museums"]'}]
    assert formats[0]["rejected"] == [{"role": "assistant", "content": "Sure! Education"}]
    assert formats[0]["prompt"] == PROMPT
    # "a" also has one semantic pair (Museums 0.7 over Education 0.4)
    assert stats["semantic_pairs"] == 1 and stats["format_pairs"] == 2

    # share 0.2 with one semantic pair: at most 0.25 format pairs -> none
    pairs, stats = build_pairs(items, cfg(format_share=0.2))
    assert stats["format_pairs"] == 0 and stats["format_pairs_available"] == 2
    # share 0.5 with one semantic pair: one format pair (half of all)
    pairs, stats = build_pairs(items, cfg(format_share=0.5))
    assert stats["format_pairs"] == 1 and stats["pairs"] == 2 and stats["format_share"] == 0.5


def test_semantic_pairs_prefer_the_higher_cosine_and_skip_equal_keyword_sets():
    items = [item("a", [cand(["Education", "Schools"], 0.61), cand(["schools", "education"], 0.60),
                        cand(["Weather"], 0.20)])]
    pairs, stats = build_pairs(items, cfg(balance_margins=False))
    # the two orderings of {education, schools} are not a pair; each is preferred to Weather
    assert all(json.loads(p["rejected"][0]["content"]) == ["Weather"] for p in pairs)
    assert all(p["kind"] == "semantic" and p["margin"] > 0 for p in pairs)
    assert {p["chosen_cosine"] for p in pairs} <= {0.61, 0.60}
    assert stats["generations"] == 3 and stats["valid_rate"] == 1.0


def test_identical_answers_count_once_and_ties_make_no_pair():
    same = cand(["Education"], 0.5)
    items = [item("a", [same, dataclasses.replace(same), cand(["Art"], 0.5)])]
    pairs, stats = build_pairs(items, cfg())
    assert pairs == [] and stats["pairs"] == 0      # equal cosine: no preference (min_margin 0)
    pairs, _ = build_pairs([item("a", [cand(["Education"], 0.5), cand(["Art"], 0.45)])], cfg(min_margin=0.1))
    assert pairs == []                              # margin 0.05 under min_margin


def test_margin_bins_are_balanced():
    # four prompts: two with a wide margin only, two with a narrow one only
    items = [item(f"w{i}", [cand(["A"], 0.9), cand(["B"], 0.1)]) for i in range(2)] + \
            [item(f"n{i}", [cand(["A"], 0.52), cand(["B"], 0.50)]) for i in range(2)] + \
            [item("w2", [cand(["C"], 0.8), cand(["D"], 0.0)])]
    pairs, stats = build_pairs(items, cfg())
    assert stats["semantic_pairs_available"] == {"small": 2, "large": 3}
    assert (stats["small_margin_pairs"], stats["large_margin_pairs"]) == (2, 2)
    assert sorted(p["margin_bin"] for p in pairs) == ["large", "large", "small", "small"]
    assert len({p["id"] for p in pairs}) == len(pairs)
    _, unbalanced = build_pairs(items, cfg(balance_margins=False))
    assert unbalanced["semantic_pairs"] == 5


def test_one_prompt_gives_at_most_one_pair_per_bin():
    items = [item("a", [cand(["A"], 0.9), cand(["B"], 0.5), cand(["C"], 0.45), cand(["D"], 0.1)])]
    pairs, _ = build_pairs(items, cfg(balance_margins=False))
    assert sorted(p["margin_bin"] for p in pairs) == ["large", "small"]
    large = next(p for p in pairs if p["margin_bin"] == "large")
    assert large["chosen"][0]["content"] == '["A"]' and large["rejected"][0]["content"] == '["D"]'
    one, _ = build_pairs(items, cfg(balance_margins=False, pairs_per_prompt=1))
    assert len(one) == 1 and one[0]["margin_bin"] == "large"


def test_signals_and_their_agreement(tiny_thesaurus):
    th = tiny_thesaurus
    uris = sorted(th.label)[:2]
    gold = [th.label[u] for u in uris]
    items = [
        # cosine, F1 and thesaurus labels all prefer the gold answer
        item("agree", [cand(gold, 0.8), cand(["Invented topic"], 0.3)], uris),
        # cosine prefers the invented labels: both other signals disagree
        item("disagree", [cand(["Made up"], 0.9), cand(gold[:1], 0.2)], uris),
    ]
    pairs, stats = build_pairs(items, cfg(balance_margins=False), th.resolve)
    first = next(p for p in pairs if p["source_id"] == "agree")
    assert (first["chosen_f1"], first["rejected_f1"]) == (1.0, 0.0)
    assert (first["chosen_thesaurus_share"], first["rejected_thesaurus_share"]) == (1.0, 0.0)
    agreement = stats["agreement"]
    assert agreement["cosine_vs_f1"] == {"agree": 1, "disagree": 1, "tie": 0, "rate": 0.5}
    assert agreement["cosine_vs_thesaurus"]["rate"] == 0.5
    assert agreement["f1_vs_thesaurus"] == {"agree": 2, "disagree": 0, "tie": 0, "rate": 1.0}


def test_valid_candidate_without_cosine_is_an_error():
    with pytest.raises(Exception, match="no cosine"):
        build_pairs([item("a", [Candidate('["A"]', ["A"]), cand(["B"], 0.2)])], cfg())


def test_config_bounds():
    with pytest.raises(ConfigError, match="at least 2"):
        PairsConfig(k=1)
    with pytest.raises(ConfigError, match="format_share"):
        PairsConfig(format_share=1.5)


def test_contract_passes_sound_pairs_and_names_broken_ones(tmp_path):
    items = [item(f"w{i}", [cand(["A"], 0.9), cand(["B"], 0.1), cand(None, raw="oops")]) for i in range(4)]
    config = cfg(format_share=0.5, balance_margins=False)
    pairs, stats = build_pairs(items, config)
    assert stats["format_pairs"] == 4 and stats["semantic_pairs"] == 4
    report = check_pairs(pairs, config, tmp_path / "ok")
    assert report.success and (tmp_path / "ok" / "report.html").exists()

    broken = [dict(p) for p in pairs]
    broken[0]["rejected"] = broken[0]["chosen"]
    broken[1]["prompt"] = []
    with pytest.raises(ContractError) as err:
        check_pairs(broken, config, tmp_path / "bad")
    message = str(err.value)
    assert "chosen_equals_rejected" in message and "prompt_content" in message
    assert "is_format" not in message

    with pytest.raises(ContractError, match="is_format"):   # 4 format of 8 pairs: over a 0.2 share
        check_pairs(pairs, cfg(format_share=0.2), tmp_path / "share")


def test_the_gold_answer_can_compete_but_is_not_a_generation():
    gold = Candidate('["Museums"]', ["Museums"], 0.8, source="gold")
    items = [item("a", [cand(None, raw="Sure! museums"), cand(None, raw="heritage"), gold])]
    pairs, stats = build_pairs(items, cfg(format_share=1.0))
    assert stats["generations"] == 2 and stats["valid_rate"] == 0.0
    assert len(pairs) == 1 and pairs[0]["kind"] == "format"
    assert (pairs[0]["chosen_source"], pairs[0]["rejected_source"]) == ("gold", "sample")
