"""The one inference path, shared by evaluation and the service, so served = measured.

text -> chunks of `chunk_chars` (overlapping) -> one generation per chunk -> JSON array parse ->
labels resolved to concept URIs -> votes aggregated across chunks -> parent/child redundancy
dropped (keep the specific term; siblings stay) -> top N.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

from .config import TaggerConfig
from .synth import PROMPT
from .thesaurus import Thesaurus, normalize


class EmptyDocumentError(ValueError):
    pass


def chunk_text(text: str, size: int, overlap: int) -> list[str]:
    """Windows of at most `size` chars, `overlap` chars shared, cut at whitespace when possible."""
    if overlap >= size:
        raise ValueError(f"chunk overlap ({overlap}) must be smaller than chunk size ({size})")
    text = text.strip()
    chunks, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > 0 else end
        chunks.append(text[start:end].strip())
        if end >= len(text):
            break
        start = max(end - overlap, start + 1)
    return [c for c in chunks if c]


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


@dataclass
class Keyword:
    uri: str
    label: str
    score: float

    def as_dict(self) -> dict:
        return {"uri": self.uri, "label": self.label, "score": round(self.score, 4)}


@dataclass
class TagResult:
    keywords: list[Keyword]
    raw_outputs: list[str]
    valid_json: bool            # every chunk answered a JSON array of strings
    emitted: int = 0            # labels the model emitted (all chunks)
    out_of_thesaurus: list[str] = field(default_factory=list)
    duplicates: int = 0         # labels repeated within one chunk's answer


def aggregate(per_chunk: list[list[str]], th: Thesaurus, top_n: int) -> tuple[list[Keyword], list[str], int]:
    votes: Counter[str] = Counter()
    first_seen: dict[str, int] = {}
    unknown, duplicates = [], 0
    for labels in per_chunk:
        seen_here: set[str] = set()  # labels and URIs already counted in this chunk
        for lab in labels:
            uri = th.resolve(lab)
            key = uri or normalize(lab)
            if key in seen_here:  # same label twice, or two labels of one concept
                duplicates += 1
                continue
            seen_here.add(key)
            if uri is None:
                unknown.append(lab)
                continue
            votes[uri] += 1
            first_seen.setdefault(uri, len(first_seen))
    ranked = sorted(votes, key=lambda u: (-votes[u], first_seen[u]))
    kept = th.prune_hierarchy(ranked)[:top_n]
    n = max(len(per_chunk), 1)
    return [Keyword(u, th.label[u], votes[u] / n) for u in kept], unknown, duplicates


class Tagger:
    def __init__(self, tokenizer, model, thesaurus: Thesaurus, cfg: TaggerConfig):
        self.tok, self.model, self.th, self.cfg = tokenizer, model, thesaurus, cfg

    def _generate(self, chunks: list[str]) -> list[str]:
        import torch

        outputs = []
        for i in range(0, len(chunks), self.cfg.batch_size):
            batch = [[{"role": "user", "content": PROMPT.format(text=c)}] for c in chunks[i:i + self.cfg.batch_size]]
            enc = self.tok.apply_chat_template(batch, add_generation_prompt=True, return_tensors="pt",
                                               padding=True, return_dict=True).to(self.model.device)
            with torch.inference_mode():
                out = self.model.generate(**enc, max_new_tokens=self.cfg.max_new_tokens, do_sample=False,
                                          pad_token_id=self.tok.pad_token_id)
            outputs += self.tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        return outputs

    def tag_many(self, texts: list[str], top_n: int | None = None) -> list[TagResult]:
        top_n = self.cfg.top_n if top_n is None else top_n
        if top_n < 1:
            raise ValueError(f"top_n must be at least 1, got {top_n}")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise EmptyDocumentError(f"document {i} is empty: nothing to tag")
        chunked = [chunk_text(t, self.cfg.chunk_chars, self.cfg.chunk_overlap) for t in texts]
        flat = [c for chunks in chunked for c in chunks]
        raw = self._generate(flat)  # all chunks of all documents batched together
        results, pos = [], 0
        for chunks in chunked:
            outs = raw[pos:pos + len(chunks)]
            pos += len(chunks)
            parsed = [parse_keywords(o) for o in outs]
            labels = [p or [] for p in parsed]
            keywords, unknown, dups = aggregate(labels, self.th, top_n)
            results.append(TagResult(keywords, outs, all(p is not None for p in parsed),
                                     sum(len(x) for x in labels), unknown, dups))
        return results

    def tag(self, text: str, top_n: int | None = None) -> TagResult:
        return self.tag_many([text], top_n)[0]
