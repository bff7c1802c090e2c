"""Free generation: an instruction LLM (with its LoRA adapter) answers a JSON array of labels per
chunk; labels in any thesaurus language are resolved to concept URIs. The reference system.

The prompt is the one the adapter was trained with (recorded beside it by the SFT step), never
the current code's default, so an old model keeps answering the question it learned."""
from __future__ import annotations

import json
import re
from pathlib import Path

from ...core.errors import ModelError
from ...thesaurus import normalize
from .base import ChunkSuggestions, Suggestion, TaggerBackend


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


def resolve_labels(labels: list[str], thesaurus) -> ChunkSuggestions:
    """Labels -> one vote (score 1) per concept; repeated concepts and unknown labels counted."""
    seen: set[str] = set()   # labels and URIs already counted in this chunk
    suggestions, unknown, duplicates = [], [], 0
    for label in labels:
        uri = thesaurus.resolve(label)
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
    }

    def __init__(self, params: dict, thesaurus, model_dir: str | Path | None = None):
        super().__init__(params, thesaurus, model_dir)
        if self.model_dir is None:
            raise ModelError("the llm backend needs a trained adapter directory (run the SFT step)")
        from ..sft import load_adapter
        self.tok, self.model, self.meta = load_adapter(self.model_dir)
        self.prompt = self.meta["prompt"]

    def generate(self, chunks: list[str]) -> list[str]:
        from ...core.generation import generate_chat

        conversations = [[{"role": "user", "content": self.prompt.format(text=c)}] for c in chunks]
        return generate_chat(self.tok, self.model, conversations,
                             max_new_tokens=self.params["max_new_tokens"],
                             batch_size=self.params["batch_size"])

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        results = []
        for raw in self.generate(chunks):
            labels = parse_keywords(raw)
            result = resolve_labels(labels or [], self.thesaurus)
            result.raw, result.well_formed = raw, labels is not None
            results.append(result)
        return results

    @classmethod
    def model_info(cls, model_dir) -> dict:
        from ..sft import adapter_meta

        meta = adapter_meta(model_dir)
        return {"base_model": meta["base_model"], "prompt": meta["prompt"]}

    def describe(self) -> dict:
        return {"base_model": self.meta["base_model"], "prompt": self.prompt}
