"""Fine-tune a retrieval encoder on hand-indexed documents (the embedding backend's `train_set`).

A zero-shot encoder scores "how alike are these texts"; an indexer's question is "which concept
does this passage discuss", and real documents discuss their subjects in their own words. A few
hundred indexed records teach the encoder that mapping: for every gold concept of a document, the
`windows` passages that already sit closest to the concept (where the document discusses it) are
paired with one of the concept's descriptions (the preferred label more often than not), and the
encoder is trained with in-batch negatives (MultipleNegativesRankingLoss: each passage must pick
its own concept among the batch's others). Batches never hold the same text twice, so a concept
named by two passages of a document is not its own negative.

The tuned encoder is saved inside the backend's model directory, so the registered model carries
it (served = measured). Training is seeded; on a CPU, MiniLM learns 300 documents in ~10 minutes.
"""
from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np

from ...core.log import get_logger
from ..text import chunk_text, windows

log = get_logger("encoder-tuning")

ENCODER_DIR = "encoder"


def training_pairs(encoder, documents: list[dict], descriptions: dict[str, list[str]], params: dict,
                   seed: int) -> list[tuple[str, str]]:
    """(passage, concept description) pairs: per gold concept the `train_windows` windows of the
    document closest to any of its descriptions (under the encoder as it is)."""
    from ...core.encoders import embed

    rng = random.Random(seed)
    query, passage = params["query_prefix"], params["passage_prefix"]
    pairs, described_vectors = [], {}   # a concept's descriptions embedded once, not per document
    for doc in documents:
        texts = [w for chunk in chunk_text(doc["text"], 3000, 500) for w in windows(chunk, params["window_chars"])]
        gold = [u for u in doc["uris"] if u in descriptions]
        if not texts or not gold:
            continue
        found = embed(encoder, texts, params["batch_size"], query)
        for uri in gold:
            if uri not in described_vectors:
                described_vectors[uri] = embed(encoder, descriptions[uri], params["batch_size"], passage)
            described = described_vectors[uri]
            closest = np.argsort(-(found @ described.T).max(1), kind="stable")[:params["train_windows"]]
            for i in closest:
                text = descriptions[uri][0] if rng.random() < 0.6 else rng.choice(descriptions[uri])
                pairs.append((query + texts[i], passage + text))
    return pairs


def fine_tune(model_id: str, documents: list[dict], descriptions: dict[str, list[str]], params: dict,
              out_dir: Path) -> dict:
    """Train a copy of `model_id` on `documents` and save it as a sentence-transformers folder
    in out_dir/encoder. Returns the summary the fit records."""
    import time

    import torch
    from datasets import Dataset
    from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                       SentenceTransformerTrainingArguments)
    from sentence_transformers.sentence_transformer import losses   # the v6 paths (old ones warn)
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    from transformers import PrinterCallback, TrainerCallback

    from ...core.encoders import resolve_encoder

    seed = params["train_seed"]
    torch.manual_seed(seed)
    encoder = SentenceTransformer(resolve_encoder(model_id), device="cuda" if torch.cuda.is_available() else "cpu")
    pairs = training_pairs(encoder, documents, descriptions, params, seed)
    if len(pairs) < 2:
        from ...core.errors import DataError
        raise DataError(f"backend embedding.train_set: {len(documents)} documents gave {len(pairs)} "
                        f"training pair(s); at least 2 are needed (gold URIs in this thesaurus?)")
    data = Dataset.from_dict({"anchor": [p[0] for p in pairs], "positive": [p[1] for p in pairs]})
    work = Path(out_dir) / ".trainer"   # the trainer wants an output folder; nothing is kept there

    class Progress(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log.info("encoder fine-tuning: step %d/%d, loss %.3f", state.global_step, state.max_steps,
                         logs["loss"])

    args = SentenceTransformerTrainingArguments(
        output_dir=str(work), num_train_epochs=params["train_epochs"],
        per_device_train_batch_size=params["train_batch"], learning_rate=params["train_lr"],
        warmup_steps=0.1, seed=seed, batch_sampler=BatchSamplers.NO_DUPLICATES,   # float: a share of the steps
        save_strategy="no", report_to="none", logging_steps=10, disable_tqdm=True,
        dataloader_pin_memory=False)
    trainer = SentenceTransformerTrainer(model=encoder, args=args, train_dataset=data,
                                         loss=losses.MultipleNegativesRankingLoss(encoder),
                                         callbacks=[Progress()])
    trainer.remove_callback(PrinterCallback)   # progress goes through our log instead
    start = time.monotonic()
    log.info("encoder fine-tuning: %s on %d pairs from %d documents", model_id, len(pairs), len(documents))
    result = trainer.train()
    encoder.save(str(Path(out_dir) / ENCODER_DIR))
    shutil.rmtree(work, ignore_errors=True)
    return {"documents": len(documents), "pairs": len(pairs), "steps": result.global_step,
            "train_loss": round(float(result.training_loss), 4), "seconds": round(time.monotonic() - start, 1)}
