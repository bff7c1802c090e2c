"""Zero-shot retrieval with a sentence encoder: every concept is described by a few short texts
(its preferred and alternative labels in the configured languages, and "label: scope note"), all
embedded once by `fit` into an index; a chunk is embedded and each concept scores the best cosine
of its descriptions. Nothing is learned from the synthetic documents, so the index depends only on
the thesaurus and the encoder. It finds concepts a text never names (the lexical backend's blind
spot) but is less precise; the ensemble combines both.

Encoders read a bounded number of tokens (all-MiniLM-L6-v2: 256, about 1,200 characters of
English; the rest is silently dropped) and one vector blurs a chunk's several topics, so chunks
are cut into windows of `window_chars`, all embedded in the same batch, and a concept keeps its
best score over the chunk's windows.

Hubness correction (`hub_weight`, off by default): some concepts sit near every text (generic
hubs) and crowd the top of every list. `fit` measures each concept's hubness on a background
that is no evaluation data, the thesaurus itself: the mean cosine of the concept's `hub_k`
nearest other concepts (best description pair). Ranking then uses the cosine minus `hub_weight`
x (hubness - the median hubness), CSLS-style; `min_score` still gates the plain cosine.

Fine-tuning (`train_set`, off by default): given hand-indexed documents (a library's own records),
`fit` first trains the encoder on them (encoder_tuning.py), saves it in the model directory and
builds the index with it; only documents in `train_languages` (default: the indexed `languages`)
teach it. The evaluation
refuses a dev set that shares a document with the training set.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, ModelError
from ...core.io import write_json
from ...thesaurus.index import strings
from ..text import windows  # noqa: F401 (also part of this module's interface)
from .base import ChunkSuggestions, Suggestion, TaggerBackend, parse_languages

INDEX = "index.npz"
INFO = "embedding.json"
# Parameters that shape the index: fixed at fit time, so inference must use the same ones.
INDEX_PARAMS = ("encoder", "use_alt_labels", "use_scope_notes", "languages", "passage_prefix",
                "train_set", "train_epochs", "train_lr", "train_batch", "train_windows", "train_seed",
                "train_languages")


def hubness(vectors: np.ndarray, starts: np.ndarray, k: int, block: int = 256) -> np.ndarray:
    """Per concept (rows of one concept contiguous, from `starts`): the mean of its k highest
    cosines to the other concepts, a concept pair scoring its best pair of descriptions. Computed
    in blocks of whole concepts (all rows x all rows would not fit in memory for a big index)."""
    n = len(starts)
    if n < 2:
        return np.zeros(n, dtype=np.float32)
    k = min(k, n - 1)
    bounds = np.append(starts, len(vectors))
    out = np.empty(n, dtype=np.float32)
    for a in range(0, n, block):
        b = min(a + block, n)
        rows = vectors[bounds[a]:bounds[b]] @ vectors.T
        sims = np.maximum.reduceat(np.maximum.reduceat(rows, starts, axis=1), bounds[a:b] - bounds[a], axis=0)
        sims[np.arange(b - a), np.arange(a, b)] = -np.inf   # not its own neighbour
        out[a:b] = -np.partition(-sims, k - 1, axis=1)[:, :k].mean(1)
    return out


def concept_descriptions(table, params: dict) -> tuple[list[str], list[str]]:
    """(uri, text) rows: each concept's labels and scope note, rows of one concept contiguous,
    repeated texts of a concept (case-folded) once."""
    known = sorted(c.removeprefix("pref_") for c in table.columns if c.startswith("pref_"))
    langs = parse_languages(params["languages"], known, "backend embedding.languages")
    uris, texts = [], []
    for row in table.to_dict("records"):
        pref = [t for lang in langs for t in strings(row.get(f"pref_{lang}"))]
        alt = [t for lang in langs for t in strings(row.get(f"alt_{lang}"))] if params["use_alt_labels"] else []
        own = pref + alt
        note = strings(row.get("scope_note")) if params["use_scope_notes"] else []
        if note and own:  # the note alone is ambiguous ("Includes solar wind, flares..."): name it
            own.append(f"{(strings(row.get('pref_en')) or own)[0]}: {note[0]}")
        seen = set()
        for text in own:
            if text.casefold() not in seen:
                seen.add(text.casefold())
                uris.append(row["uri"])
                texts.append(text)
    return uris, texts


class EmbeddingBackend(TaggerBackend):
    name = "embedding"
    needs_fit = True   # the concept index is built (embedded) once, then travels with the model
    DEFAULT_PARAMETERS = {
        "encoder": "embedded:all-minilm-l6-v2",  # sentence-transformers id (core.encoders)
        "limit": 20,               # concepts kept per chunk
        "min_score": 0.3,          # cosine below which a concept is not suggested
        "use_alt_labels": True,    # index alternative labels too
        "use_scope_notes": True,   # index "label: scope note" where the concept has one
        "languages": "en",         # label languages indexed (comma-separated); MiniLM is English
        "query_prefix": "",        # role markers for encoders trained with them (E5: "query: ")
        "passage_prefix": "",      # ... and for the concept descriptions (E5: "passage: ")
        "batch_size": 32,          # texts per encoder forward pass
        "window_chars": 500,       # chunk windows (paragraph-sized, within the token limit); 0: none
        "hub_weight": 0.0,         # rank by cosine - hub_weight x (hubness - median); 0: plain cosine
        "hub_k": 10,               # hubness: mean cosine of a concept's hub_k nearest concepts (fit)
        "train_set": "",           # hand-indexed *.jsonl (folder or file) to fine-tune the encoder on
        "train_epochs": 2,         # ... passes over its (passage, concept) pairs
        "train_lr": 2e-5,
        "train_batch": 32,         # pairs per step (the in-batch negatives)
        "train_windows": 2,        # passages paired with each gold concept of a document
        "train_seed": 13,
        "train_languages": "",     # documents (by `lang`) that teach it; "": the indexed `languages`
    }

    @classmethod
    def _check(cls, params: dict) -> dict:
        params = cls.resolve_params(params, f"backend {cls.name}")
        for key in ("limit", "batch_size", "hub_k", "train_epochs", "train_batch", "train_windows"):
            if params[key] < 1:
                raise ConfigError(f"backend {cls.name}.{key}: must be at least 1, got {params[key]}")
        return params

    @classmethod
    def fit(cls, params: dict, thesaurus, documents: list[dict], out_dir: Path) -> dict:
        """Embed every concept's descriptions into out_dir/index.npz (with the encoder fine-tuned on
        `train_set` first, where one is named); `documents` (the synthetic split) are not used."""
        from ...core.encoders import embed, load_encoder

        params = cls._check(params)
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        uris, texts = concept_descriptions(thesaurus.table, params)
        tuned, trained_ids = None, []
        if params["train_set"]:
            from .base import load_train_set
            from .encoder_tuning import ENCODER_DIR, fine_tune

            langs = set(parse_languages(params["train_languages"] or params["languages"], thesaurus.languages(),
                                        "backend embedding.train_languages"))
            docs = [d for d in load_train_set(params["train_set"], f"backend {cls.name}.train_set")
                    if d.get("lang", "") in langs | {""}]
            described: dict[str, list[str]] = {}
            for uri, text in zip(uris, texts):
                described.setdefault(uri, []).append(text)
            tuned = fine_tune(params["encoder"], docs, described, params, out_dir)
            trained_ids = sorted(str(d["id"]) for d in docs if "id" in d)
        encoder = load_encoder(str(out_dir / ENCODER_DIR) if tuned else params["encoder"])
        start = time.monotonic()
        vectors = embed(encoder, texts, params["batch_size"], params["passage_prefix"])
        seconds = time.monotonic() - start
        starts = np.flatnonzero([i == 0 or uris[i] != uris[i - 1] for i in range(len(uris))])
        hub = hubness(vectors.astype(np.float32), starts, params["hub_k"])
        # float16 halves the file (cosines move by ~1e-3); URIs as a fixed-width unicode array,
        # so loading needs no pickle; compressed, since those repetitive URIs are a quarter of it.
        # hubness: one value per row (its concept's), so it follows the rows wherever they go
        np.savez_compressed(out_dir / INDEX, vectors=vectors.astype(np.float16),
                            uris=np.array(uris, dtype=str),
                            hubness=np.repeat(hub, np.diff(np.append(starts, len(uris)))))
        summary = {"concepts": len(set(uris)), "rows": len(uris), "dim": int(vectors.shape[1]),
                   "embed_seconds": round(seconds, 1), "hub_k": params["hub_k"],
                   "hubness_median": round(float(np.median(hub)), 4) if len(hub) else None,
                   "index_bytes": (out_dir / INDEX).stat().st_size}
        if tuned:
            summary["fine_tuned"] = tuned
        write_json(out_dir / INFO, {"params": params, **summary, "trained_ids": trained_ids})
        return summary

    def __init__(self, params: dict, thesaurus, model_dir: str | Path | None = None):
        super().__init__(params, thesaurus, model_dir)
        self.params = self._check(self.params)
        index = self.model_dir / INDEX if self.model_dir is not None else None
        if index is None or not index.exists() or not (self.model_dir / INFO).exists():
            raise ModelError(f"embedding: no concept index in {self.model_dir} (run `tagflow tagger fit`)")
        info = json.loads((self.model_dir / INFO).read_text())
        # hub_k shapes the stored hubness, which only a hub_weight uses
        shaping = INDEX_PARAMS + (("hub_k",) if self.params["hub_weight"] else ())
        changed = [k for k in shaping if info["params"].get(k) != self.params[k]]
        if changed:  # vectors from another encoder (or other texts) would score silently wrong
            raise ModelError(f"embedding: index in {self.model_dir} was built with other "
                             f"{changed}: {[info['params'].get(k) for k in changed]}; refit it")
        with np.load(index) as data:
            vectors, row_uris = data["vectors"].astype(np.float32), data["uris"]
            row_hub = data["hubness"] if "hubness" in data.files else None
        if row_hub is None and self.params["hub_weight"]:
            raise ModelError(f"embedding: index in {self.model_dir} has no hubness (fitted before "
                             f"hub_weight existed); refit it")
        keep = np.array([u in thesaurus for u in row_uris], dtype=bool)  # only today's concepts
        vectors, row_uris = vectors[keep], row_uris[keep]
        # Sort rows by concept so each concept is one contiguous run: its score is then a
        # `maximum.reduceat` over the run, vectorised for all chunks at once.
        self.uris, concept_of_row = np.unique(row_uris, return_inverse=True)
        order = np.argsort(concept_of_row, kind="stable")
        self.vectors = vectors[order]
        self.starts = np.searchsorted(concept_of_row[order], np.arange(len(self.uris)))
        self.hub_offset = np.zeros(len(self.uris), dtype=np.float32)  # subtracted before ranking
        if self.params["hub_weight"] and len(self.uris):
            hub = row_hub[keep][order][self.starts].astype(np.float32)
            self.hub_offset = self.params["hub_weight"] * (hub - np.median(hub))
        from ...core.encoders import load_encoder
        from .encoder_tuning import ENCODER_DIR
        self.tuned = info.get("fine_tuned")
        self.trained_on = frozenset(info.get("trained_ids", []))
        if self.params["train_set"] and not (self.model_dir / ENCODER_DIR).is_dir():
            raise ModelError(f"embedding: {self.model_dir} has no fine-tuned encoder; refit it")
        self.encoder = load_encoder(str((self.model_dir / ENCODER_DIR).resolve()) if self.params["train_set"]
                                    else self.params["encoder"])

    def window_scores(self, chunks: list[str]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """Per chunk a (windows, concepts) cosine matrix (a concept's best description per
        window); (chunks, concepts) cosines of each chunk's mean window vector; and those mean
        vectors, unit length (chunks, dim). All windows of all chunks go through the encoder
        together (length-sorted shards side by side: shards.py)."""
        from .shards import embed_sharded

        pieces = [windows(c, self.params["window_chars"]) for c in chunks]
        bounds = np.cumsum([0] + [len(ps) for ps in pieces])
        queries = embed_sharded(self.encoder, [p for ps in pieces for p in ps], self.params["batch_size"],
                                self.params["query_prefix"])
        per_window = np.maximum.reduceat(queries @ self.vectors.T, self.starts, axis=1)
        means = np.stack([queries[a:b].mean(0) for a, b in zip(bounds[:-1], bounds[1:])])
        means /= np.linalg.norm(means, axis=1, keepdims=True)
        whole = np.maximum.reduceat(means @ self.vectors.T, self.starts, axis=1)
        return [per_window[a:b] for a, b in zip(bounds[:-1], bounds[1:])], whole, means

    def scores(self, chunks: list[str]) -> np.ndarray:
        """(chunks, concepts) cosine: the best over the concept's descriptions and the chunk's windows."""
        per_chunk, *_ = self.window_scores(chunks)
        return np.stack([m.max(0) for m in per_chunk]).astype(np.float32)

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        if not chunks or not len(self.uris):
            return [ChunkSuggestions([]) for _ in chunks]
        limit, min_score = min(self.params["limit"], len(self.uris)), self.params["min_score"]
        results = []
        for cosine in self.scores(chunks):
            row = cosine - self.hub_offset   # hubs demoted (hub_weight 0: the cosine itself)
            top = np.argpartition(-row, limit - 1)[:limit]
            top = top[np.argsort(-row[top], kind="stable")]
            results.append(ChunkSuggestions([Suggestion(str(self.uris[i]), float(row[i]))
                                             for i in top if cosine[i] >= min_score]))
        return results

    def describe(self) -> dict:
        out = {"encoder": self.params["encoder"]}
        if self.params["hub_weight"]:
            out["hub_correction"] = {"weight": self.params["hub_weight"], "k": self.params["hub_k"],
                                     "background": "thesaurus"}
        if self.tuned:
            out["fine_tuned_on"] = {"train_set": self.params["train_set"], **self.tuned}
        return out

    def training_ids(self) -> frozenset[str]:
        return self.trained_on
