"""The topics classifiers on a tiny real corpus: the SVM floor learns it, the transformer
(embedded MiniLM encoder, and the embedded SmolLM2 decoder) trains with LoRA, stops early, and
comes back from disk with the same scores."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tagflow.topics.classifiers import load_classifier, make_classifier
from tagflow.topics.config import DataConfig, SvmConfig, TransformerConfig
from tagflow.topics.data import build_table, label_matrix, texts_of
from tagflow.topics.metrics import f1_scores
from tagflow.topics.reuters import read_dir
from tests.topics_sgml import corpus, write_distribution


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    raw = read_dir(write_distribution(tmp_path_factory.mktemp("raw"), corpus(12)))
    table, info = build_table(raw, DataConfig(val_fraction=0.3))
    labels = info["labels"] + ["zinc"]            # a label without any training document
    train, val = table[table["split"] == "train"], table[table["split"] == "validation"]
    return (labels, texts_of(train), label_matrix(train["labels"], labels),
            texts_of(val), label_matrix(val["labels"], labels))


def test_svm_learns_and_round_trips(splits, tmp_path):
    labels, X, Y, Xv, Yv = splits
    clf = make_classifier("svm", labels, dataclasses.asdict(SvmConfig()))
    info = clf.fit(X, Y, Xv, Yv)
    assert info["val_micro_f1"] > 0.9 and info["labels_without_training_docs"] == 1
    S = clf.scores(Xv)
    assert S.shape == (len(Xv), len(labels)) and (S[:, -1] == 0).all()   # zinc never predicted
    assert f1_scores(Yv, S >= 0.5)["micro_f1"] == pytest.approx(info["val_micro_f1"])
    clf.save(tmp_path / "svm")
    np.testing.assert_allclose(load_classifier(tmp_path / "svm").scores(Xv), S)


def transformer_params(**overrides) -> dict:
    params = dataclasses.asdict(TransformerConfig())
    params.update({"max_length": 32, "batch_size": 4, "eval_every": 2, "patience": 5, **overrides})
    return params


def test_minilm_lora_trains_and_round_trips(splits, tmp_path):
    labels, X, Y, Xv, Yv = splits
    clf = make_classifier("transformer", labels, transformer_params(max_steps=6))
    info = clf.fit(X, Y, Xv, Yv)
    assert info["steps"] == 6 and [h["step"] for h in info["history"]] == [2, 4, 6]
    assert 0 < info["trainable_params"] < 2_000_000          # LoRA + head, not the whole encoder
    assert info["best_val_micro_f1"] == max(h["val_micro_f1"] for h in info["history"])
    S = clf.scores(Xv)
    assert S.shape == (len(Xv), len(labels)) and ((S >= 0) & (S <= 1)).all()
    clf.save(tmp_path / "minilm")
    again = load_classifier(tmp_path / "minilm")
    np.testing.assert_allclose(again.scores(Xv), S, atol=2e-2)   # merged LoRA, bf16 autocast


def test_early_stopping_keeps_the_best_check(splits):
    labels, X, Y, Xv, Yv = splits
    # nothing can improve with a zero learning rate: the first check is best, patience 1 stops
    clf = make_classifier("transformer", labels, transformer_params(max_steps=20, learning_rate=0.0,
                                                                     eval_every=1, patience=1))
    info = clf.fit(X, Y, Xv, Yv)
    assert (info["steps"], info["best_step"], info["planned_steps"]) == (2, 1, 20)


def test_decoder_backbone_smollm2(splits, tmp_path):
    labels, X, Y, Xv, Yv = splits
    clf = make_classifier("transformer", labels, transformer_params(
        backbone="embedded:smollm2-135m-instruct", max_steps=2, batch_size=2, lora_r=4, lora_alpha=8))
    info = clf.fit(X[:8], Y[:8], Xv[:6], Yv[:6])
    assert info["steps"] == 2 and clf.tokenizer.pad_token is not None
    assert clf.model.config.pad_token_id == clf.tokenizer.pad_token_id   # the head reads the last real token
    S = clf.scores(Xv[:6])
    clf.save(tmp_path / "smol")
    np.testing.assert_allclose(load_classifier(tmp_path / "smol").scores(Xv[:6]), S, atol=5e-2)  # bf16


def most_frequent_label_f1(Y, Yv) -> float:
    """The trivial baseline: every document gets the most frequent training label."""
    P = np.zeros_like(Yv, dtype=bool)
    P[:, np.asarray(Y).sum(0).argmax()] = True
    return f1_scores(Yv, P)["micro_f1"]


def test_minilm_mean_pooling_head_learns(splits):
    labels, X, Y, Xv, Yv = splits
    clf = make_classifier("transformer", labels, transformer_params(max_steps=24, eval_every=8))
    info = clf.fit(X, Y, Xv, Yv)
    assert info["pooling"] == "mean" and clf.params["pooling"] == "mean"    # auto -> mean for an encoder
    losses = [h["train_loss"] for h in info["history"]]
    assert losses[-1] < 0.7 * losses[0]
    assert info["best_val_micro_f1"] >= 0.9 > most_frequent_label_f1(Y, Yv) + 0.3


def logits_alone_and_padded(clf, short: str, long: str):
    """The short document's logits alone and beside a longer one (padded), in fp32."""
    import torch

    clf.model.eval()
    with torch.no_grad():
        alone = clf.model(**clf._encode([short])).logits[0]
        padded_batch = clf._encode([short, long])
        assert (padded_batch["attention_mask"][0] == 0).any()          # the short one is padded
        padded = clf.model(**padded_batch).logits[0]
    return alone.float().numpy(), padded.float().numpy()


@pytest.mark.parametrize("backbone, pooling", [("embedded:all-minilm-l6-v2", "mean"),
                                               ("embedded:smollm2-135m-instruct", "model")])
def test_padding_does_not_change_a_documents_logits(splits, backbone, pooling):
    labels, X, Y, Xv, Yv = splits
    clf = make_classifier("transformer", labels, transformer_params(
        backbone=backbone, max_steps=1, batch_size=2, lora_r=4, lora_alpha=8, max_length=64))
    clf.fit(X[:2], Y[:2])
    assert clf.params["pooling"] == pooling
    alone, padded = logits_alone_and_padded(clf, "Wheat exports rise", X[0] + " " + X[1])
    np.testing.assert_allclose(padded, alone, atol=1e-4)


def test_max_minutes_stops_with_a_last_check(splits):
    labels, X, Y, Xv, Yv = splits
    clf = make_classifier("transformer", labels, transformer_params(max_steps=50, eval_every=100,
                                                                     max_minutes=1e-6))
    info = clf.fit(X, Y, Xv, Yv)
    assert (info["steps"], info["best_step"], [h["step"] for h in info["history"]]) == (1, 1, [1])
