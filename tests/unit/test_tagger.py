"""The inference path without model weights: chunking, the llm backend's answer parsing and label
resolution, aggregation over the tiny thesaurus, and Tagger.tag_many end to end with an llm
backend whose generations are canned."""
from __future__ import annotations

import random

import pytest

from tagflow.core.errors import ConfigError
from tagflow.tagger.backends.llm import LLMBackend, parse_keywords, resolve_labels
from tagflow.tagger.config import InferConfig
from tagflow.tagger.pipeline import EmptyDocumentError, Tagger, aggregate, chunk_text

T = "http://example.org/thes/"
C = {n: f"{T}c{n}" for n in range(1, 10)}


@pytest.fixture(scope="module")
def th(tiny_thesaurus):
    return tiny_thesaurus


def words_text(n_chars: int, seed: int = 0) -> str:
    """Unique, variable-length words, so every chunk can be located in the text."""
    rng = random.Random(seed)
    words, size, i = [], 0, 0
    while size < n_chars:
        word = f"w{i}" + "x" * rng.randint(0, 9)
        words.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(words)[:n_chars].rstrip()


# ---- with_title ----------------------------------------------------------------------------

def test_a_title_is_read_as_the_first_paragraph_once():
    from tagflow.tagger.text import with_title

    assert with_title("Corals died.", "Reef  bleaching\n") == "Reef bleaching\n\nCorals died."
    assert with_title("Reef bleaching\n\nCorals died.", "Reef bleaching") == "Reef bleaching\n\nCorals died."
    assert with_title("Corals died.", None) == with_title("Corals died.", "  ") == "Corals died."


# ---- chunk_text ----------------------------------------------------------------------------

def test_short_text_is_one_chunk():
    assert chunk_text("  A short text about museums.  ", 3000, 500) == ["A short text about museums."]


def test_blank_text_has_no_chunks():
    assert chunk_text("   \n ", 3000, 500) == []


def test_long_text_windows():
    text = words_text(7000)
    assert len(text) >= 6990
    chunks = chunk_text(text, 3000, 500)
    assert len(chunks) == 3
    spans, pos = [], 0
    for chunk in chunks:
        assert 0 < len(chunk) <= 3000
        start = text.find(chunk, max(pos - 3000, 0))
        assert start >= 0, "every chunk is a verbatim slice of the text"
        spans.append((start, start + len(chunk)))
        pos = start + len(chunk)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)  # full coverage at both ends
    for (s1, e1), (s2, e2) in zip(spans, spans[1:]):
        assert s1 < s2 < e1 < e2                 # consecutive chunks overlap and advance
        assert 400 <= e1 - s2 <= 500             # by about `overlap` characters
    for _, end in spans[:-1]:
        assert text[end] == " "                  # cut at whitespace, never inside a word


def test_text_without_spaces_is_cut_hard():
    chunks = chunk_text("x" * 7000, 3000, 500)
    assert [len(c) for c in chunks] == [3000, 3000, 2000]


@pytest.mark.parametrize("overlap", [3000, 3500])
def test_overlap_must_be_smaller_than_size(overlap):
    with pytest.raises(ConfigError, match="overlap"):
        chunk_text("some text", 3000, overlap)


# ---- parse_keywords ------------------------------------------------------------------------

def test_parse_plain_array():
    assert parse_keywords('["Museums", "Teachers"]') == ["Museums", "Teachers"]


def test_parse_array_in_chatter():
    raw = 'Sure! Here are the keywords:\n["Museums", " Teachers "]\nHope this helps.'
    assert parse_keywords(raw) == ["Museums", "Teachers"]


def test_parse_drops_blank_items_and_accepts_empty_array():
    assert parse_keywords('["  ", "Museums"]') == ["Museums"]
    assert parse_keywords("[]") == []


@pytest.mark.parametrize("raw", [
    '["Museums", "Teachers"',      # truncated
    "Museums, Teachers",           # no array at all
    '["Museums", 3]',              # non-string item
    '[["Museums"]]',               # nested
    '{"keywords": "Museums"}',     # object
    "",
])
def test_parse_rejects(raw):
    assert parse_keywords(raw) is None


def test_parse_rejects_object_wrapping_an_array():
    assert parse_keywords('{"keywords": ["Museums"]}') is None


def test_parse_array_followed_by_bracketed_chatter():
    assert parse_keywords('["Museums", "Teachers"]\n\nSources: [1] ICOM') == ["Museums", "Teachers"]


# ---- resolve_labels + aggregate ------------------------------------------------------------

def uris(keywords):
    return [k.uri for k in keywords]


def aggregate_labels(label_chunks, th, top_n, strategy="specific"):
    """(concepts, unknown labels, duplicates) for the labels each chunk answered."""
    per_chunk = [resolve_labels(labels, th) for labels in label_chunks]
    return (aggregate(per_chunk, th, top_n, strategy),
            [u for c in per_chunk for u in c.unknown], sum(c.duplicates for c in per_chunk))


def test_votes_across_chunks_rank_by_frequency(th):
    kws, unknown, dups = aggregate_labels(
        [["Museums", "Teachers"], ["Teachers"], ["Archaeological sites", "Teachers"]], th, 10)
    assert uris(kws) == [C[5], C[8], C[9]]  # ties keep first-seen order
    assert [k.score for k in kws] == pytest.approx([1.0, 1 / 3, 1 / 3])
    assert [k.label for k in kws] == ["Teachers", "Museums", "Archaeological sites"]
    assert (unknown, dups) == ([], 0)


def test_alt_and_french_labels_map_to_preferred_uri(th):
    kws, _, _ = aggregate_labels([["Educators"], ["Enseignement supérieur"]], th, 10)
    assert [(k.uri, k.label) for k in kws] == [(C[5], "Teachers"), (C[2], "Higher education")]


def test_unknown_labels_reported(th):
    kws, unknown, _ = aggregate_labels([["Quantum physics", "Museums"], ["Bananas"]], th, 10)
    assert uris(kws) == [C[8]]
    assert unknown == ["Quantum physics", "Bananas"]


def test_duplicates_within_a_chunk_counted_once(th):
    kws, _, dups = aggregate_labels([["Museums", "museums", "Museums."], ["Museums"]], th, 10)
    assert dups == 2
    assert [(k.uri, k.score) for k in kws] == [(C[8], 1.0)]  # one vote per chunk


def test_parent_child_collapsed_to_child(th):
    kws, _, _ = aggregate_labels([["Education", "Higher education", "Universities", "Primary education"]], th, 10)
    assert uris(kws) == [C[3], C[4]]
    kws, _, _ = aggregate_labels([["Cultural heritage", "Museums", "Archaeological sites"]], th, 10)
    assert uris(kws) == [C[8], C[9]]  # siblings both stay


def test_top_n_applied_after_pruning(th):
    chunks = [["Education", "Universities", "Museums", "Teaching methods"]]
    assert uris(aggregate_labels(chunks, th, 2)[0]) == [C[3], C[8]]
    assert uris(aggregate_labels(chunks, th, 10)[0]) == [C[3], C[8], C[6]]


def test_no_chunks(th):
    assert aggregate_labels([], th, 10) == ([], [], 0)


def test_ancestors_kept_when_refinement_is_off(th):
    chunks = [["Education", "Higher education", "Universities"]]
    assert uris(aggregate_labels(chunks, th, 10, strategy="none")[0]) == [C[1], C[2], C[3]]


def test_frequency_ranks_by_chunks_suggesting_and_score_by_summed_score(th):
    from tagflow.tagger.backends.base import ChunkSuggestions, Suggestion
    per_chunk = [ChunkSuggestions([Suggestion(C[8], 0.9)]), ChunkSuggestions([Suggestion(C[5], 0.2)]),
                 ChunkSuggestions([Suggestion(C[5], 0.3), Suggestion(C[9], 0.3)])]
    by_score = aggregate(per_chunk, th, 10, "none", by="score")
    by_votes = aggregate(per_chunk, th, 10, "none", by="frequency")
    assert uris(by_score) == [C[8], C[5], C[9]] and uris(by_votes) == [C[5], C[8], C[9]]
    assert [k.score for k in by_votes] == pytest.approx([0.5 / 3, 0.3, 0.1])   # mean over chunks
    with pytest.raises(ConfigError, match=r"unknown aggregation 'mode'"):
        aggregate(per_chunk, th, 10, by="mode")


@pytest.mark.parametrize("field,value", [("aggregate", "votes"), ("refine", "specfic")])
def test_a_misspelled_strategy_is_refused_when_configured(field, value):
    with pytest.raises(ConfigError, match=rf"tagger.infer.{field}: expected one of .*, got '{value}'"):
        InferConfig(**{field: value})


def test_one_vote_per_concept_per_chunk(th):
    kws, _, _ = aggregate_labels([["Higher education", "Tertiary education"], ["Museums"]], th, 10)
    assert all(k.score <= 1.0 for k in kws)
    assert [k.score for k in kws] == pytest.approx([0.5, 0.5])


# ---- Tagger.tag_many with canned model answers -----------------------------------------------

class CannedLLM(LLMBackend):
    """The real llm backend (parsing, label resolution) with generation a function of the chunk."""

    def __init__(self, th, answer):
        self.params, self.thesaurus, self.model_dir = self.resolve_params({}, "canned"), th, None
        self.answer, self.calls, self.trie, self.nearest = answer, [], None, None

    def generate(self, chunks):
        self.calls.append(list(chunks))
        return [self.answer(c) for c in chunks]


class CannedTagger(Tagger):
    def __init__(self, th, cfg, answer):
        super().__init__(CannedLLM(th, answer), th, cfg)
        self.calls = self.backend.calls


CFG = InferConfig(chunk_chars=200, chunk_overlap=40, top_n=5)


def answer_by_topic(chunk: str) -> str:
    if "BROKEN" in chunk:
        return 'Keywords: ["Museums", '      # truncated generation
    labels = []
    if "museum" in chunk:
        labels += ["Museums", "Cultural heritage"]
    if "teacher" in chunk:
        labels += ["Educators"]
    if "quantum" in chunk:
        labels += ["Quantum physics"]
    return "Here you go: " + str(labels).replace("'", '"')


def test_tag_many_end_to_end(th):
    museum_doc = "A short note on the museum of the town and its collections."
    long_doc = " ".join(["The teacher explains the lesson to the class."] * 8 + ["quantum"])
    tagger = CannedTagger(th, CFG, answer_by_topic)
    first, second = tagger.tag_many([museum_doc, long_doc])

    n_long = len(chunk_text(long_doc, 200, 40))
    assert n_long > 1
    assert len(tagger.calls) == 1 and len(tagger.calls[0]) == 1 + n_long  # all chunks batched once

    assert [k.as_dict() for k in first.concepts] == [{"uri": C[8], "label": "Museums", "score": 1.0}]
    assert first.well_formed and first.emitted == 2 and first.out_of_thesaurus == []
    assert first.raw_outputs == ['Here you go: ["Museums", "Cultural heritage"]']

    assert [k.uri for k in second.concepts] == [C[5]]
    assert second.concepts[0].label == "Teachers"  # alt label answered, preferred label returned
    assert second.concepts[0].score == pytest.approx(1.0)
    assert second.out_of_thesaurus == ["Quantum physics"]
    assert second.well_formed and len(second.raw_outputs) == n_long


def test_one_broken_chunk_marks_document_invalid(th):
    doc = " ".join(["The museum opened a new wing."] * 10 + ["BROKEN"] + ["The museum closed."] * 10)
    chunks = chunk_text(doc, 200, 40)
    broken = sum("BROKEN" in c for c in chunks)
    assert 1 <= broken < len(chunks)
    result = CannedTagger(th, CFG, answer_by_topic).tag(doc)
    assert not result.well_formed
    assert len(result.raw_outputs) == len(chunks)
    # the good chunks still vote; a broken chunk votes for nothing but still dilutes the score
    assert [k.uri for k in result.concepts] == [C[8]]
    assert result.concepts[0].score == pytest.approx((len(chunks) - broken) / len(chunks))
    assert result.emitted == 2 * (len(chunks) - broken)


def test_top_n_default_and_override(th):
    doc = "museum and teacher"
    tagger = CannedTagger(th, CFG, lambda c: '["Museums", "Teachers", "Teaching methods"]')
    assert len(tagger.tag(doc).concepts) == 3
    assert [k.uri for k in tagger.tag(doc, top_n=1).concepts] == [C[8]]


@pytest.mark.parametrize("texts, index", [([""], 0), (["fine text", "   \n\t"], 1), (["ok", None], 1)])
def test_empty_document_refused_before_generation(th, texts, index):
    tagger = CannedTagger(th, CFG, answer_by_topic)
    with pytest.raises(EmptyDocumentError, match=f"document {index} is empty"):
        tagger.tag_many(texts)
    assert tagger.calls == []


# ---- freed memory goes back after each batch (core/memory.py) --------------------------------

def test_tag_many_gives_freed_memory_back_after_each_batch(th, monkeypatch):
    from tagflow.core import memory

    calls = []
    tagger = CannedTagger(th, CFG, answer_by_topic)
    monkeypatch.setattr(memory, "release_freed_memory", lambda: calls.append(len(tagger.calls)) or True)
    tagger.tag_many(["A note on the museum.", "The teacher and the class."])
    tagger.tag("The museum's teacher.")
    assert calls == [1, 2]              # once per batch, after the backend's call


def test_release_freed_memory_gives_a_hole_in_the_heap_back():
    import ctypes

    from tagflow.core import memory

    libc = ctypes.CDLL(None)
    if not hasattr(libc, "malloc_trim"):
        pytest.skip("not glibc: no malloc_trim")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(4096) for _ in range(4096)]    # 16 MiB of small blocks on the heap
    guard = libc.malloc(4096)                           # keeps their space off the heap's top
    for block in blocks:
        libc.free(block)                                # freed, but kept by malloc
    try:
        assert memory.release_freed_memory() is True    # pages given back to the system
    finally:
        libc.free(guard)
