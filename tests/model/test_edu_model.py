"""The edu inference path with the embedded MiniLM: embeddings cached by page id (computed once,
extended incrementally), heads that learn to rank educational pages above adverts, and a scorer
folder that reproduces the training-time scores."""
from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import pytest

from tagflow.core.errors import DataError, ModelError
from tagflow.edu import heads
from tagflow.edu.data import page_id
from tagflow.edu.embed import embed_pages, read_cache, vectors_for
from tagflow.edu.metrics import spearman
from tagflow.edu.model import CARD, HEAD, EduScorer, encode
from tests.edu_pages import pages

SPEC = {"model": "embedded:all-minilm-l6-v2", "prefix": "", "max_seq_length": 128}


@pytest.fixture(scope="module")
def data():
    texts, scores = pages(48)
    frame = pd.DataFrame({"id": [page_id(t) for t in texts], "text": texts, "score": scores})
    return frame, encode(SPEC, texts, bf16="off")


def test_cache_embeds_each_page_once(tmp_path, data):
    frame, vectors = data
    folder = tmp_path / "cache"
    first = embed_pages(SPEC, frame.iloc[:30], folder, bf16="off")
    assert (first["embedded"], first["reused"]) == (30, 0)
    again = embed_pages(SPEC, frame.iloc[:30], folder, bf16="off")
    assert (again["embedded"], again["reused"]) == (0, 30)
    more = embed_pages(SPEC, frame, folder, bf16="off")
    assert (more["embedded"], more["reused"]) == (18, 30)
    ids, cached = read_cache(folder)
    assert len(ids) == 48 and cached.dtype == np.float32
    got = vectors_for(folder, frame["id"].tolist()[::-1])
    np.testing.assert_allclose(got, vectors[::-1], atol=1e-5)
    with pytest.raises(DataError, match="no cached embedding"):
        vectors_for(folder, ["not-a-page"])


def test_prefix_changes_the_embedding(data):
    frame, vectors = data
    prefixed = encode(SPEC | {"prefix": "passage: "}, frame["text"].tolist()[:2], bf16="off")
    assert not np.allclose(prefixed, vectors[:2], atol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(prefixed, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("head, params", [("linear", {}), ("ridge", {"alpha": 1.0}), ("mlp", {"alpha": 1e-3}),
                                          ("ordinal", {"C": 1.0})])
def test_heads_rank_educational_pages_above_adverts(data, head, params):
    frame, vectors = data
    y = frame["score"].to_numpy(dtype=float)
    model = heads.fit(head, params, vectors[:32], y[:32], seed=0, mlp_hidden=16)
    pred = model.predict(vectors[32:])
    assert spearman(y[32:], pred) > 0.5, head
    edu_mean = pred[y[32:] >= 3].mean()
    ad_mean = pred[y[32:] < 3].mean()
    assert edu_mean > ad_mean + 1.0, (head, edu_mean, ad_mean)


def test_ordinal_head_stays_inside_the_trained_range(data):
    frame, vectors = data
    y = frame["score"].to_numpy(dtype=float)
    pred = heads.fit("ordinal", {"C": 1.0}, vectors, y).predict(vectors)
    assert pred.min() >= y.min() and pred.max() <= y.max()


def test_candidates_list_the_reference_first():
    cands = heads.candidates(["linear", "ridge", "ordinal"], [1.0, 10.0])
    assert cands[0] == ("linear", {})
    assert ("ridge", {"alpha": 10.0}) in cands and ("ordinal", {"C": 0.1}) in cands


def test_scorer_folder_reproduces_scores(tmp_path, data):
    frame, vectors = data
    y = frame["score"].to_numpy(dtype=float)
    model = heads.fit("ridge", {"alpha": 1.0}, vectors, y)
    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(model, folder / HEAD)
    (folder / CARD).write_text(json.dumps({"family": "edu", "encoder": SPEC, "bf16": "off", "batch_size": 8,
                                           "head": {"kind": "ridge", "params": {"alpha": 1.0}}}))
    scorer = EduScorer.load(folder)
    scores, ints = scorer.score(frame["text"].tolist()[:6])
    np.testing.assert_allclose(scores, model.predict(vectors[:6]), atol=1e-4)
    assert ints.tolist() == np.round(np.clip(scores, 0, 5)).astype(int).tolist()
    (folder / CARD).write_text(json.dumps({"family": "tagger"}))
    with pytest.raises(ModelError, match="not 'edu'"):
        EduScorer.load(folder)
    with pytest.raises(ModelError, match="not an edu model folder"):
        EduScorer.load(tmp_path)


def test_bf16_weights_path_stays_close_to_fp32(data):
    frame, vectors = data
    fast = encode(SPEC, frame["text"].tolist()[:6], bf16="on")
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)  # renormalized in fp32
    assert np.min(np.sum(fast * vectors[:6], axis=1)) > 0.999
    assert not np.array_equal(fast, vectors[:6])  # really another precision


def test_int8_onnx_runtime_agrees_with_fp32(data):
    """The int8 ONNX graph (transformer + mean pooling) against fp32 torch: a wrong pooling, a
    positional-argument mix-up in the export or per-tensor quantization falls below these bounds."""
    frame, vectors = data
    texts = frame["text"].tolist()[:8]
    fast = encode(SPEC, texts, batch_size=3, runtime="onnx-int8")  # 3 batches of mixed lengths
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(fast * vectors[:8], axis=1)
    assert cosine.min() > 0.97 and cosine.mean() > 0.985
    assert not np.allclose(fast, vectors[:8], atol=1e-4)  # really the quantized graph
    y = frame["score"].to_numpy(dtype=float)
    head = heads.fit("ridge", {"alpha": 1.0}, vectors[8:], y[8:])
    assert spearman(head.predict(vectors[:8]), head.predict(fast)) > 0.9
    assert encode(SPEC, [], runtime="onnx-int8").shape == (0, vectors.shape[1])


def test_scorer_runs_the_runtime_its_card_names(tmp_path, data):
    frame, vectors = data
    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(heads.fit("ridge", {"alpha": 1.0}, vectors, frame["score"].to_numpy(dtype=float)), folder / HEAD)
    card = {"family": "edu", "encoder": SPEC, "bf16": "off", "runtime": "onnx-int8", "batch_size": 8}
    (folder / CARD).write_text(json.dumps(card))
    texts = frame["text"].tolist()[:4]
    np.testing.assert_array_equal(EduScorer.load(folder).embed(texts), encode(SPEC, texts, batch_size=8,
                                                                               runtime="onnx-int8"))
    (folder / CARD).write_text(json.dumps(card | {"runtime": "tensorrt"}))
    with pytest.raises(ModelError, match="unknown edu runtime 'tensorrt'"):
        EduScorer.load(folder).embed(texts)


def test_compiled_runtime_agrees_with_fp32_and_compiles_once(data):
    """torch-compile (bf16 weights, inductor with frozen weights) against fp32 sentence-transformers:
    a wrong pooling, a dropped attention mask (padded rows then differ) or a lost page order falls
    far below these bounds. One graph serves every batch size, a lone page and callers in inference
    mode or not: a recompilation would cost a server a minute."""
    import torch
    from torch._dynamo.utils import counters

    frame, vectors = data
    texts = frame["text"].tolist()[:8]
    fast = encode(SPEC, texts, batch_size=3, bf16="on", runtime="torch-compile")  # 3 padded batches
    graphs = counters["stats"]["unique_graphs"]
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(fast * vectors[:8], axis=1)
    assert cosine.min() > 0.999, cosine
    assert not np.array_equal(fast, vectors[:8])  # really bf16
    y = frame["score"].to_numpy(dtype=float)
    head = heads.fit("ridge", {"alpha": 1.0}, vectors[8:], y[8:])
    assert spearman(head.predict(vectors[:8]), head.predict(fast)) > 0.95
    with torch.inference_mode():
        whole = encode(SPEC, texts, batch_size=8, bf16="on", runtime="torch-compile")
    alone = encode(SPEC, texts[5:6], bf16="on", runtime="torch-compile")
    np.testing.assert_allclose(whole, fast, atol=2e-3)
    np.testing.assert_allclose(alone[0], fast[5], atol=2e-3)
    assert counters["stats"]["unique_graphs"] == graphs
    assert encode(SPEC, [], runtime="torch-compile").shape == (0, vectors.shape[1])
