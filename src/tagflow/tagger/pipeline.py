"""The one inference path, shared by evaluation, the CLI and the service, so served = measured.

text -> chunks of `chunk_chars` (overlapping) -> the backend's suggestions per chunk (all chunks
of a batch of documents together) -> scores averaged across a document's chunks -> parent/child
redundancy dropped (keep the specific term; siblings stay) -> top N.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..core import memory
from ..core.errors import ConfigError, DataError
from ..thesaurus import Thesaurus
from .backends import make_backend
from .backends.base import ChunkSuggestions, TaggerBackend
from .config import AGGREGATIONS, REFINEMENTS, InferConfig
from .text import chunk_text  # noqa: F401 (part of this module's interface)


class EmptyDocumentError(DataError):
    pass


@dataclass
class ScoredConcept:
    uri: str
    label: str
    score: float

    def as_dict(self) -> dict:
        return {"uri": self.uri, "label": self.label, "score": round(self.score, 4)}


@dataclass
class TaggedDocument:
    concepts: list[ScoredConcept]
    raw_outputs: list[str]
    well_formed: bool           # every chunk's answer had the backend's expected format
    emitted: int = 0            # labels the backend emitted (all chunks)
    out_of_thesaurus: list[str] = field(default_factory=list)
    duplicates: int = 0         # labels repeated within one chunk's answer


def refine(ranked: list[str], scores: dict[str, float], th: Thesaurus, strategy: str) -> list[str]:
    """Resolve ancestor/descendant pairs among the suggestions; siblings always stay.

    none      keep everything
    specific  keep the descendant of each pair (the reference: the most specific term)
    broad     keep the ancestor of each pair
    balanced  keep whichever of the pair scores higher (the descendant on a tie)
    Ancestors are followed through every parent, so this holds under polyhierarchy."""
    if strategy not in REFINEMENTS:
        raise ConfigError(f"unknown refinement {strategy!r}; known: {list(REFINEMENTS)}")
    if strategy == "none":
        return ranked
    if strategy == "specific":
        return th.prune_hierarchy(ranked)
    here = set(ranked)
    dropped: set[str] = set()
    for u in ranked:
        for a in th.ancestors(u) & here:   # a is an ancestor of u; both were suggested
            if strategy == "broad" or scores[a] > scores[u]:
                dropped.add(u)
            else:
                dropped.add(a)
    return [u for u in ranked if u not in dropped]


def aggregate(per_chunk: list[ChunkSuggestions], th: Thesaurus, top_n: int,
              strategy: str = "specific", lang: str = "en", by: str = "score") -> list[ScoredConcept]:
    """Concepts of a document from its chunks' suggestions, best first, refined by `strategy`,
    the best `top_n`, labelled in `lang`. The score is the mean over the document's chunks (a
    chunk's silence counts 0). Ranked `by`:
      score      the summed score (the same as frequency for the llm, whose votes score 1)
      frequency  the number of chunks suggesting the concept (the reference), ties by summed score
    Remaining ties: first suggested first."""
    if by not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {by!r}; known: {list(AGGREGATIONS)}")
    total: dict[str, float] = defaultdict(float)
    votes: dict[str, int] = defaultdict(int)
    first_seen: dict[str, int] = {}
    for chunk in per_chunk:
        for s in chunk.suggestions:
            total[s.uri] += s.score
            votes[s.uri] += 1
            first_seen.setdefault(s.uri, len(first_seen))
    if by == "frequency":
        ranked = sorted(total, key=lambda u: (-votes[u], -total[u], first_seen[u]))
    else:
        ranked = sorted(total, key=lambda u: (-total[u], first_seen[u]))
    ranked = refine(ranked, total, th, strategy)
    n = max(len(per_chunk), 1)
    return [ScoredConcept(u, th.pref_label(u, lang), total[u] / n) for u in ranked[:top_n]]


class Tagger:
    def __init__(self, backend: TaggerBackend, thesaurus: Thesaurus, cfg: InferConfig):
        self.backend, self.th, self.cfg = backend, thesaurus, cfg

    @classmethod
    def build(cls, cfg: InferConfig, thesaurus: Thesaurus, model_dir: str | Path | None) -> "Tagger":
        return cls(make_backend(cfg, thesaurus, model_dir), thesaurus, cfg)

    def tag_many(self, texts: list[str], top_n: int | None = None, refine: str | None = None,
                 lang: str | None = None) -> list[TaggedDocument]:
        """Concepts per text. top_n, refine and lang default to the configured (the model's)."""
        top_n = self.cfg.top_n if top_n is None else top_n
        refine = refine or self.cfg.refine
        lang = lang or self.cfg.label_lang
        if top_n < 1:
            raise DataError(f"top_n must be at least 1, got {top_n}")
        if refine not in REFINEMENTS:
            raise DataError(f"unknown refinement {refine!r}; choose one of {', '.join(REFINEMENTS)}")
        if lang not in self.th.languages():
            raise DataError(f"no labels in {lang!r}; the thesaurus has {', '.join(self.th.languages())}")
        for i, text in enumerate(texts):
            if not isinstance(text, str) or not text.strip():
                raise EmptyDocumentError(f"document {i} is empty: nothing to tag")
        chunked = [chunk_text(t, self.cfg.chunk_chars, self.cfg.chunk_overlap) for t in texts]
        flat = [c for chunks in chunked for c in chunks]
        suggested = self.backend.suggest(flat)  # all chunks of all documents batched together
        if len(suggested) != len(flat):
            raise RuntimeError(f"backend {self.backend.name} answered {len(suggested)} of {len(flat)} chunks")
        results, pos = [], 0
        for chunks in chunked:
            mine = suggested[pos:pos + len(chunks)]
            pos += len(chunks)
            results.append(TaggedDocument(
                aggregate(mine, self.th, top_n, refine, lang, self.cfg.aggregate), [c.raw for c in mine],
                all(c.well_formed for c in mine), sum(c.emitted for c in mine),
                [u for c in mine for u in c.unknown], sum(c.duplicates for c in mine)))
        # The batch's activations, freed now, would otherwise stay in glibc's arenas (one per
        # encoder thread) and the process's memory would creep batch after batch (core/memory.py).
        memory.release_freed_memory()
        return results

    def tag(self, text: str, top_n: int | None = None, refine: str | None = None,
            lang: str | None = None) -> TaggedDocument:
        return self.tag_many([text], top_n, refine, lang)[0]
