"""Encoder shards (tagger/backends/shards.py) on the real embedded MiniLM: the tagger answers the
same whether documents come one at a time or batched, sharded or in one plain call, and the
shard threads leave torch's thread setting as it was."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from tagflow.core import encoders
from tagflow.tagger.backends import fit_backend, make_backend
from tagflow.tagger.backends.shards import embed_sharded, slices
from tagflow.tagger.config import InferConfig
from tagflow.tagger.pipeline import Tagger

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shard_calls(monkeypatch):
    """(thread name, torch threads, texts) of every encoder call."""
    calls, plain = [], encoders.embed

    def spy(encoder, texts, *args):
        calls.append((threading.current_thread().name, torch.get_num_threads(), len(texts)))
        return plain(encoder, texts, *args)

    monkeypatch.setattr(encoders, "embed", spy)
    return calls


def dev_documents() -> list[str]:
    """Two English and two French documents of the hand-indexed development set."""
    docs = []
    for name in ("en-a.jsonl", "fr.jsonl"):
        lines = (ROOT / "devsets" / "tagger" / name).read_text().splitlines()
        docs += [json.loads(line)["text"] for line in lines[:2]]
    return docs


@pytest.mark.parametrize("count,threads,batch,shards", [(8, 2, 32, 2), (64, 2, 32, 2), (70, 2, 32, 4),
                                                        (3, 4, 32, 3), (1, 2, 32, 1), (9, 1, 4, 3)])
def test_slices_cover_every_text_once_longest_first(count, threads, batch, shards):
    lengths = [(i * 37) % 101 for i in range(count)]
    parts = slices(lengths, threads, batch)
    assert len(parts) == shards and all(len(p) <= batch for p in parts)
    flat = [i for p in parts for i in p]
    assert sorted(flat) == list(range(count))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert slices([], 2, 32) == []


def test_sharded_vectors_equal_one_plain_call(two_threads, shard_calls):
    encoder = encoders.load_encoder("embedded:all-minilm-l6-v2")
    texts = [" ".join(["museum collections and cultural heritage"] * (1 + i % 7)) for i in range(11)]
    plain = encoders.embed(encoder, texts, 32)
    embed_sharded(encoder, texts[:2], 32)          # the first call per encoder is a plain one
    shard_calls.clear()
    sharded = embed_sharded(encoder, texts, 32)
    assert np.abs(sharded - plain).max() < 1e-5
    # two shards on the pool's threads, each running torch with one thread
    assert sorted(c[2] for c in shard_calls) == [5, 6]
    assert all(name.startswith("encoder-shard") and n == 1 for name, n, _ in shard_calls)
    # ... while the caller and threads started later keep the caller's setting
    later = []
    thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert torch.get_num_threads() == 2 and later == [2]


def test_tagger_answers_the_same_batched_or_alone_sharded_or_not(tiny_thesaurus, tmp_path, two_threads,
                                                                   shard_calls):
    infer = InferConfig(backend="route", top_n=5, refine="none", chunk_chars=1200, chunk_overlap=200, backends={
        "route": {"routes": "en=embedding,*=embedding@fr"},
        "embedding": {"min_score": 0.0, "window_chars": 300},
        "embedding@fr": {"languages": "fr", "min_score": 0.0, "window_chars": 300},
    })
    fit_backend(infer, tiny_thesaurus, [], [], tmp_path)
    tagger = Tagger(make_backend(infer, tiny_thesaurus, tmp_path), tiny_thesaurus, infer)
    docs = dev_documents()
    tagger.tag_many(docs[:1])                       # first call per encoder: plain
    shard_calls.clear()
    batched = tagger.tag_many(docs)
    assert any(name.startswith("encoder-shard") for name, _, _ in shard_calls)
    alone = [tagger.tag(d) for d in docs]
    torch.set_num_threads(1)                        # one thread: one plain encoder call
    plain = tagger.tag_many(docs)
    for a, b, c in zip(batched, alone, plain):
        assert len(a.concepts) >= 3       # refine none, min_score 0: concepts with labels in the language
        assert [x.uri for x in a.concepts] == [x.uri for x in b.concepts] == [x.uri for x in c.concepts]
        for x, y, z in zip(a.concepts, b.concepts, c.concepts):
            assert abs(x.score - y.score) < 1e-5 and abs(x.score - z.score) < 1e-5
