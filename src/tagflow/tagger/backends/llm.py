"""The fine-tuned generator: an instruction LLM (with its LoRA adapter) answers a JSON array of
labels per chunk. Two decoding modes:
- `free` (the reference system): whatever it writes is parsed leniently, and each label is
  resolved to a concept in any thesaurus language, exactly, else (`mapping: nearest`) to the
  closest label by character trigrams above `min_similarity`; the rest counts as unknown;
- `constrained`: a label trie steers decoding (`constrained.py`), so the answer is always a JSON
  array of distinct thesaurus labels.

The prompt is the one the adapter was trained with (recorded beside it by the SFT step), never
the current code's default, so an old model keeps answering the question it learned."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ...core.errors import ConfigError, ModelError
from ...thesaurus import normalize
from .base import ChunkSuggestions, Suggestion, TaggerBackend, parse_languages


def parse_keywords(raw: str) -> list[str] | None:
    """The model must answer a JSON array of strings; None when it did not. The whole answer is
    tried first, then the first array that decodes on its own (models add chatter after it).
    An object holding an array is not an array answer."""
    text = raw.strip()
    candidates = [text] + [text[m.start():] for m in re.finditer(r"\[", text)]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            value, _ = decoder.raw_decode(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                return None
            return [v.strip() for v in value if v.strip()]
        if candidate is text:
            return None  # the answer is valid JSON but not an array
    return None


def resolve_labels(labels: list[str], thesaurus, nearest=None) -> ChunkSuggestions:
    """Labels -> one vote (score 1) per concept; repeated concepts and unknown labels counted.
    `nearest(label) -> uri | None` maps labels that match no thesaurus label exactly."""
    seen: set[str] = set()   # labels and URIs already counted in this chunk
    suggestions, unknown, duplicates = [], [], 0
    for label in labels:
        uri = thesaurus.resolve(label) or (nearest(label) if nearest else None)
        key = uri or normalize(label)
        if key in seen:      # same label twice, or two labels of one concept
            duplicates += 1
            continue
        seen.add(key)
        if uri is None:
            unknown.append(label)
        else:
            suggestions.append(Suggestion(uri, 1.0))
    return ChunkSuggestions(suggestions, emitted=len(labels), unknown=unknown, duplicates=duplicates)


class LLMBackend(TaggerBackend):
    name = "llm"
    DEFAULT_PARAMETERS = {
        "max_new_tokens": 96,   # generation budget per chunk
        "batch_size": 8,        # chunks generated together
        "decoding": "free",     # free | constrained (see the module docstring)
        "mapping": "exact",     # free decoding: exact | nearest (unknown labels to the closest one)
        "min_similarity": 0.75,  # nearest mapping: least trigram cosine to accept a label
        "max_labels": 10,       # constrained decoding: most labels per chunk
        "label_languages": "en",  # constrained decoding: languages of the labels it may write
        "engine": "generate",   # free decoding: generate (transformers) | static (core.generation.generate_static:
                                # static KV cache, CUDA-graph decoding steps on a GPU; same greedy answers)
    }

    @classmethod
    def _check(cls, params: dict) -> dict:
        params = cls.resolve_params(params, f"backend {cls.name}")
        choices = {"decoding": ("free", "constrained"), "mapping": ("exact", "nearest"),
                   "engine": ("generate", "static")}
        for key, allowed in choices.items():
            if params[key] not in allowed:
                raise ConfigError(f"backend llm.{key}: expected one of {list(allowed)}, got {params[key]!r}")
        for key in ("max_labels", "max_new_tokens", "batch_size"):
            if params[key] < 1:
                raise ConfigError(f"backend llm.{key}: must be at least 1, got {params[key]}")
        if params["engine"] == "static" and params["decoding"] == "constrained":
            raise ConfigError("backend llm.engine: static decodes greedily without a logits processor; "
                              "constrained decoding needs engine generate")
        return params

    def __init__(self, params: dict, thesaurus, model_dir: str | Path | None = None):
        super().__init__(params, thesaurus, model_dir)
        self.params = self._check(self.params)
        if self.model_dir is None:
            raise ModelError("the llm backend needs a trained adapter directory (run the SFT step)")
        from ..sft import load_adapter
        self.tok, self.model, self.meta = load_adapter(self.model_dir)
        self.prompt = self.meta["prompt"]
        self.trie = self.nearest = None
        if self.params["decoding"] == "constrained":
            from .constrained import LabelTrie
            self.trie = LabelTrie(self.tok, thesaurus, parse_languages(self.params["label_languages"], thesaurus.languages(),
                                                                   "backend llm.label_languages"))
            shortest = len(self.trie.open) + self.trie.root.close_rest + 1   # + end of sequence
            if self.params["max_new_tokens"] < shortest:
                raise ConfigError(f"backend llm.max_new_tokens: {self.params['max_new_tokens']} tokens "
                                  f"cannot hold even the shortest label answer ({shortest})")
        elif self.params["mapping"] == "nearest":
            from .mapping import NearestLabel
            self.nearest = NearestLabel(thesaurus, self.params["min_similarity"])

    def generate(self, chunks: list[str]) -> list[str] | list[list[int]]:
        """Decoded answers (free), or generated token ids (constrained), one per chunk."""
        from ...core.generation import generate_chat, generate_static

        conversations = [[{"role": "user", "content": self.prompt.format(text=c)}] for c in chunks]
        kwargs = {}
        if self.trie is not None:
            from .constrained import TrieLogitsProcessor
            budget, items = self.params["max_new_tokens"], self.params["max_labels"]
            kwargs = {"processor": lambda: TrieLogitsProcessor(self.trie, budget, items), "decode": False}
        run = generate_static if self.params["engine"] == "static" else generate_chat
        return run(self.tok, self.model, conversations, max_new_tokens=self.params["max_new_tokens"],
                   batch_size=self.params["batch_size"], **kwargs)

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        if self.trie is not None:
            return [self._read_constrained(ids) for ids in self.generate(chunks)]
        results = []
        for raw in self.generate(chunks):
            labels = parse_keywords(raw)
            result = resolve_labels(labels or [], self.thesaurus, self.nearest)
            result.raw, result.well_formed = raw, labels is not None
            results.append(result)
        return results

    def _read_constrained(self, ids: list[int]) -> ChunkSuggestions:
        from .constrained import labels_json

        items, closed = self.trie.read_answer(ids)
        # Cut off mid-item (budget or a dead end): the complete items still form a valid array.
        raw = self.tok.decode(ids, skip_special_tokens=True) if closed else \
            labels_json([label for _, label in items])
        return ChunkSuggestions([Suggestion(uri, 1.0) for uri, _ in items], raw=raw,
                                well_formed=closed, emitted=len(items))

    @classmethod
    def model_info(cls, model_dir) -> dict:
        from ..sft import adapter_meta

        meta = adapter_meta(model_dir)
        return {"base_model": meta["base_model"], "prompt": meta["prompt"]}

    def describe(self) -> dict:
        return {"base_model": self.meta["base_model"], "prompt": self.prompt}
