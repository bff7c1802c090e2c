"""The hand-indexed development set is well formed (its URIs are checked against the real dump
by the e2e test, which has it)."""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROWS = [json.loads(line) for f in sorted((ROOT / "devsets" / "tagger").glob("*.jsonl"))
        for line in f.read_text().splitlines() if line.strip()]


def test_size_languages_and_lengths():
    assert len(ROWS) >= 40
    langs = {r["lang"] for r in ROWS}
    assert {"en", "fr", "es"} <= langs
    assert sum(len(r["text"]) > 4000 for r in ROWS) >= 5


def test_every_document_is_complete():
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    for r in ROWS:
        assert set(r) == {"id", "lang", "genre", "title", "text", "uris", "labels", "provenance"}, r["id"]
        assert 3 <= len(r["uris"]) <= 8 and len(set(r["uris"])) == len(r["uris"]), r["id"]
        assert len(r["labels"]) == len(r["uris"]), r["id"]
        assert all(u.startswith("http://vocabularies.unesco.org/thesaurus/concept") for u in r["uris"])
        assert len(r["text"].split()) >= 100 and r["provenance"].strip(), r["id"]


TRAIN = [json.loads(line) for f in sorted((ROOT / "trainsets" / "tagger").glob("*.jsonl"))
         for line in f.read_text().splitlines() if line.strip()]


def test_training_records_are_complete_and_apart_from_the_dev_set():
    """The records the cpu default's scorer learns from and keeps as its memory: well formed like the dev set, and
    sharing no document (id or text) with it, so the dev figures stay held out."""
    assert len(TRAIN) >= 300 and {"en", "fr", "es"} <= {r["lang"] for r in TRAIN}
    assert len({r["id"] for r in TRAIN}) == len(TRAIN)
    for r in TRAIN:
        assert set(r) == {"id", "lang", "genre", "title", "text", "uris", "labels", "provenance"}, r["id"]
        assert 3 <= len(r["uris"]) <= 8 and len(set(r["uris"])) == len(r["uris"]) == len(r["labels"]), r["id"]
        assert len(r["text"].split()) >= 100, r["id"]
    assert not {r["id"] for r in TRAIN} & {r["id"] for r in ROWS}
    assert not {r["text"][:200] for r in TRAIN} & {r["text"][:200] for r in ROWS}
