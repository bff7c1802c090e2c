"""Synthetic SFT data on the tiny thesaurus: concept-set sampling, document cleaning, examples,
generate() with a deterministic fake teacher, and atomic split writing.

tiny.ttl allows exactly four distinct 3-concept sets without an ancestor/descendant pair
(({c2|c3}, c4|c6, c5) shapes), so generate() tests ask for at most four documents."""
from __future__ import annotations

import json
import random
import re
import signal

import pandas as pd
import pytest

from tagflow.core.errors import DataError
from tagflow.tagger import synth
from tagflow.tagger.config import DEFAULT_PROMPT as PROMPT, SynthConfig, TeacherConfig
from tagflow.tagger.synth import (ConceptSet, clean_document, generate, sample_concept_set, to_example,
                                  verbatim_share, write_splits)
from tagflow.thesaurus import Thesaurus

T = "http://example.org/thes/"
MIN_WORDS = 40


@pytest.fixture(scope="module")
def th(tiny_thesaurus):
    return tiny_thesaurus


@pytest.fixture(autouse=True)
def time_limit():
    """generate() loops until it has enough documents: fail fast instead of hanging."""
    def boom(*_):
        raise TimeoutError("test exceeded 30 s (generate() looping?)")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ---- concept sets --------------------------------------------------------------------------

def samples(th, seed: int, n: int = 200, k_max: int = 5) -> list[ConceptSet | None]:
    rng = random.Random(seed)
    return [sample_concept_set(th, rng, 3, k_max) for _ in range(n)]


def test_sampled_sets_are_valid(th):
    sets = [cs for cs in samples(th, 7) if cs]
    assert len(sets) > 20  # tiny.ttl yields a set for most seeds
    for cs in sets:
        assert 3 <= len(cs.uris) <= 5
        assert len(set(cs.uris)) == len(cs.uris)
        assert all(u in th for u in cs.uris)
        assert cs.labels == [th.label[u] for u in cs.uris]
        assert cs.micro_thesaurus == th.micro[cs.uris[0]]  # the seed concept's group
        for a in cs.uris:
            for b in cs.uris:
                assert a not in th.ancestors(b), f"{a} is an ancestor of {b} in {cs.uris}"


def test_too_few_compatible_concepts_gives_none(th):
    # no neighbourhood in tiny.ttl holds 5 concepts without a parent/child pair
    rng = random.Random(0)
    assert all(sample_concept_set(th, rng, 5, 8) is None for _ in range(100))


def test_same_seed_same_sets(th):
    def as_tuples(xs):
        return [tuple(cs.uris) if cs else None for cs in xs]
    assert as_tuples(samples(th, 11)) == as_tuples(samples(th, 11))
    assert as_tuples(samples(th, 11)) != as_tuples(samples(th, 12))


# ---- documents and examples ------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    "Here's an article about museums and teachers:\nMuseums employ teachers.",
    "Here is the article you asked for:\n\nMuseums employ teachers.",
    "Sure, here it is:\nMuseums employ teachers.",
    "# Museums and their teachers\nMuseums employ teachers.",
    "Title: Museums\nMuseums employ teachers.",
    "**Museums and teachers**\nMuseums employ teachers.",
    "Certainly! Below is the text:\n## Museums\nMuseums   employ\tteachers.",
])
def test_clean_document_strips_preambles_and_headings(raw):
    assert clean_document(raw) == "Museums employ teachers."


def test_clean_document_keeps_ordinary_text():
    text = "Museums employ teachers.\nHere is why: they explain collections."
    assert clean_document(text) == text


def test_verbatim_share():
    text = "The museums of the region hired Teachers for school visits."
    assert verbatim_share(text, ["Museums", "Teachers", "Cultural heritage", "Archaeological sites"]) == 0.5
    assert verbatim_share("Museumsdirektor", ["Museums"]) == 0.0  # whole words only
    assert verbatim_share(text, []) == 0.0


def test_to_example():
    cs = ConceptSet([f"{T}c8", f"{T}c5"], ["Museums", "Teachers"], f"{T}mt3")
    ex = to_example("train-0001", "Some text.", cs)
    assert ex["prompt"] == [{"role": "user",
                             "content": "Extract UNESCO Thesaurus keywords from this text:\n\nSome text."}]
    assert ex["prompt"][0]["content"] == PROMPT.format(text="Some text.")
    assert ex["completion"][0]["role"] == "assistant"
    assert json.loads(ex["completion"][0]["content"]) == ["Museums", "Teachers"]
    assert (ex["id"], ex["text"], ex["uris"], ex["labels"], ex["micro_thesaurus"]) == (
        "train-0001", "Some text.", cs.uris, cs.labels, f"{T}mt3")


def test_to_example_with_another_prompt():
    cs = ConceptSet([f"{T}c8"], ["Museums"], f"{T}mt3")
    ex = to_example("train-0002", "Museums.", cs, prompt="Tag:\n{text}\nJSON:")
    assert ex["prompt"][0]["content"] == "Tag:\nMuseums.\nJSON:"


# ---- generate() with a fake teacher ----------------------------------------------------------

class FakeTeacher:
    """Deterministic documents from the prompt and the seed; `short` picks answers that are too
    short to keep."""

    def __init__(self, short=lambda seed, i: False):
        self.short, self.calls = short, []

    def write(self, prompts, seed):
        self.calls.append((len(prompts), seed))
        out = []
        for i, messages in enumerate(prompts):
            subjects = re.search(r"these subjects: (.*)\.\n", messages[-1]["content"]).group(1)
            if self.short(seed, i):
                out.append(f"Here's an article:\n{subjects}.")
                continue
            filler = " ".join(f"word{(seed + i + j) % 97}" for j in range(MIN_WORDS))
            out.append(f"Here's an article about {subjects}:\n# {subjects}\n"
                       f"This article on {subjects} was written with seed {seed}. {filler}")
        return out


def config(n_train, n_val, n_test, seed=13, batch_size=2) -> SynthConfig:
    return SynthConfig(seed=seed, n_train=n_train, n_val=n_val, n_test=n_test, min_concepts=3,
                       max_concepts=3, target_words=60, teacher=TeacherConfig(batch_size=batch_size))


@pytest.fixture
def teacher(monkeypatch):
    fake = FakeTeacher()
    monkeypatch.setattr(synth, "make_teacher", lambda cfg: fake)
    return fake


def test_generate_splits(th, teacher):
    splits, stats = generate(th, config(2, 1, 1), MIN_WORDS)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "val": 1, "test": 1}
    assert [r["id"] for r in splits["train"]] == ["train-0000", "train-0001"]
    assert splits["val"][0]["id"] == "val-0000" and splits["test"][0]["id"] == "test-0000"
    rows = [r for rows in splits.values() for r in rows]
    assert len({frozenset(r["uris"]) for r in rows}) == 4          # distinct concept sets
    for r in rows:
        assert len(r["uris"]) == 3 and all(u in th for u in r["uris"])
        assert r["labels"] == [th.label[u] for u in r["uris"]]
        assert not r["text"].startswith(("Here's", "#"))          # cleaned
        assert len(r["text"].split()) >= MIN_WORDS
        assert json.loads(r["completion"][0]["content"]) == r["labels"]
        assert r["prompt"][0]["content"] == PROMPT.format(text=r["text"])
    assert stats["documents"] == 4 and stats["rejected_documents"] == 0
    assert stats["mean_keywords"] == 3.0
    assert stats["verbatim_label_share"] == 1.0                   # the fake teacher recites labels
    assert stats["teacher"] == "transformers:embedded:smollm2-135m-instruct"
    assert teacher.calls == [(2, 13 * 100_003), (2, 13 * 100_003 + 1)]  # seeded per batch


def test_generate_is_deterministic(th, teacher):
    first = generate(th, config(2, 1, 1), MIN_WORDS)
    second = generate(th, config(2, 1, 1), MIN_WORDS)
    assert first == second
    other = generate(th, config(2, 1, 1, seed=14), MIN_WORDS)
    assert [r["text"] for r in other[0]["train"]] != [r["text"] for r in first[0]["train"]]


def test_short_documents_are_rejected_and_replaced(th, monkeypatch):
    first_batch = 13 * 100_003
    fake = FakeTeacher(short=lambda seed, i: seed == first_batch and i == 0)
    monkeypatch.setattr(synth, "make_teacher", lambda cfg: fake)
    splits, stats = generate(th, config(1, 1, 1), MIN_WORDS)
    rows = [r for rows in splits.values() for r in rows]
    assert len(rows) == 3 and stats["rejected_documents"] == 1
    assert all(len(r["text"].split()) >= MIN_WORDS for r in rows)
    assert len(fake.calls) == 2  # a second batch replaced the rejected document


def flat_thesaurus(n: int) -> Thesaurus:
    """n unrelated concepts in one micro-thesaurus: plenty of distinct sets."""
    uris = [f"{T}f{i:02d}" for i in range(n)]
    return Thesaurus(pd.DataFrame({
        "uri": uris, "pref_en": [f"Subject {i}" for i in range(n)], "alt_en": [[] for _ in uris],
        "broader": [[] for _ in uris], "narrower": [[] for _ in uris], "related": [[] for _ in uris],
        "micro_thesaurus": [f"{T}mt"] * n}))


def test_generate_larger_splits(teacher):
    splits, stats = generate(flat_thesaurus(30), config(8, 2, 2, batch_size=4), MIN_WORDS)
    assert {k: len(v) for k, v in splits.items()} == {"train": 8, "val": 2, "test": 2}
    assert len({frozenset(r["uris"]) for rows in splits.values() for r in rows}) == 12
    assert len(teacher.calls) == 3 and stats["rejected_documents"] == 0


def test_teacher_that_never_delivers_is_stopped(monkeypatch):
    fake = FakeTeacher(short=lambda seed, i: True)
    monkeypatch.setattr(synth, "make_teacher", lambda cfg: fake)
    with pytest.raises(DataError, match=r"teacher produced 2[4-9] unusable documents"):
        generate(flat_thesaurus(30), config(1, 1, 1), MIN_WORDS)
    assert len(fake.calls) <= 13  # gives up after total + 20 rejections, not never


def test_too_many_sets_for_the_thesaurus(th, teacher):
    with pytest.raises(DataError, match=r"could not sample 8 distinct concept sets .* 9-concept"):
        generate(th, config(4, 2, 2), MIN_WORDS)


# ---- write_splits --------------------------------------------------------------------------

def test_write_splits(tmp_path):
    splits = {"train": [{"id": "train-0000", "text": "Éducation"}], "val": [], "test": [{"id": "t"}]}
    out = tmp_path / "sft"
    write_splits(splits, out, prompt="Tag: {text}")
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.jsonl", "train.jsonl", "val.jsonl"]
    assert synth.split_prompt(out) == "Tag: {text}"  # what training records for inference
    assert [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()] == splits["train"]
    assert "Éducation" in (out / "train.jsonl").read_text()  # not \u-escaped
    assert (out / "val.jsonl").read_text() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft"]  # no temporary siblings left


def test_write_splits_replaces_previous_output(tmp_path):
    out = tmp_path / "sft"
    write_splits({"train": [{"id": 1}], "val": [], "test": [], "extra": [{"id": 9}]}, out)
    write_splits({"train": [{"id": 2}], "val": [], "test": []}, out)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.jsonl", "train.jsonl", "val.jsonl"]
    assert json.loads((out / "train.jsonl").read_text()) == {"id": 2}


def test_write_splits_is_atomic_on_failure(tmp_path):
    bad = {"train": [{"id": "ok"}], "val": [{"id": "bad", "x": object()}], "test": []}
    out = tmp_path / "sft"
    with pytest.raises(TypeError):
        write_splits(bad, out)
    assert list(tmp_path.iterdir()) == []
    assert synth.split_prompt(out) == PROMPT  # no splits: the reference prompt  # no directory, no temporary leftovers

    write_splits({"train": [{"id": "old"}], "val": [], "test": []}, out)
    before = {p.name: p.read_text() for p in out.iterdir()}
    with pytest.raises(TypeError):
        write_splits(bad, out)
    assert {p.name: p.read_text() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sft"]


# ---- describing subjects to the teacher ------------------------------------------------------

def test_describe_gives_alt_labels_and_scope_note(th):
    assert synth.describe(th, f"{T}c2") == "Higher education (also: Tertiary education)"
    assert synth.describe(th, f"{T}c1") == "Education: The process of teaching and learning."
    assert synth.describe(th, f"{T}c8") == "Museums"


def test_teacher_gets_one_described_subject_a_line():
    messages = synth.teacher_messages(["Museums", "Teachers"], 100,
                                      ["Museums", "Teachers (also: Educators)"])
    user = messages[-1]["content"]
    assert "subjects: \n- Museums\n- Teachers (also: Educators)\n" in user
    assert "these subjects: Museums; Teachers." in synth.teacher_messages(["Museums", "Teachers"], 100)[-1]["content"]
