"""Synthetic SFT data: coherent concept sets -> teacher-written documents -> train/val/test.

A concept set is 3-8 concepts that belong together (a graph neighbourhood inside one
micro-thesaurus) with no ancestor/descendant pair, because the tagger keeps only the most
specific of a parent/child pair and gold data must be reachable by it. The teacher is asked to
discuss the subjects as a real article would; we measure how often it still recites the labels.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import DataError
from ..core.io import atomic_path, read_json
from ..core.log import Progress, get_logger
from ..thesaurus import Thesaurus, strings
from .config import DEFAULT_PROMPT, SynthConfig
from .teachers import make_teacher

if TYPE_CHECKING:
    from ..config import Config

SPLITS = ("train", "val", "test")
META = "meta.json"  # beside the splits: the prompt they were written with


@dataclass
class ConceptSet:
    uris: list[str]
    labels: list[str]
    micro_thesaurus: str


def _neighbourhood(th: Thesaurus, seed: str, radius: int = 2) -> list[str]:
    frontier, seen = [seed], {seed}
    for _ in range(radius):
        nxt = []
        for uri in frontier:
            for other in th.broader.get(uri, []) + th.narrower.get(uri, []) + th.related.get(uri, []):
                if other not in seen and other in th:
                    seen.add(other)
                    nxt.append(other)
        frontier = nxt
    return sorted(seen)


def sample_concept_set(th: Thesaurus, rng: random.Random, k_min: int, k_max: int) -> ConceptSet | None:
    uris = sorted(th.label)
    seed = rng.choice(uris)
    micro = th.micro.get(seed, "")
    k = rng.randint(k_min, k_max)
    near = _neighbourhood(th, seed)
    same_group = [u for u in near if th.micro.get(u) == micro]
    members = sorted(u for u in uris if micro and th.micro.get(u) == micro)
    rng.shuffle(same_group)
    rng.shuffle(members)
    chosen: list[str] = [seed]
    # neighbours in the seed's micro-thesaurus, then its other members, then other neighbours
    for uri in same_group + members + [u for u in near if u not in same_group]:
        if len(chosen) == k:
            break
        if uri in chosen:
            continue
        ancestors = th.ancestors(uri)
        if any(c in ancestors or uri in th.ancestors(c) for c in chosen):
            continue  # parent/child pairs are collapsed by the tagger: never gold together
        chosen.append(uri)
    if len(chosen) < k_min:
        return None
    return ConceptSet(chosen, [th.label[u] for u in chosen], micro)


def describe(th: Thesaurus, uri: str, alt_max: int = 3, note_chars: int = 160) -> str:
    """`Label (also: alt, alt): scope note`, so the teacher knows what a terse label means."""
    row = th.row(uri)
    alts = strings(row.get("alt_en"))[:alt_max]
    note = (row.get("scope_note") or "").strip()
    text = th.label[uri] + (f" (also: {', '.join(alts)})" if alts else "")
    return text + (f": {note[:note_chars].rstrip()}" if note else "")


def teacher_messages(labels: list[str], target_words: int, details: list[str] | None = None) -> list[dict]:
    subjects = "; ".join(labels)
    if details:  # one subject a line, with what it covers
        subjects = "\n" + "\n".join(f"- {d}" for d in details) + "\n"
    return [
        {"role": "system", "content": "You are a writer for a digital library. You write clear, factual prose."},
        {"role": "user", "content": (
            f"Write an article of about {target_words} words that discusses these subjects: {subjects}.\n"
            "Discuss them the way a real report or article would, with concrete situations and examples, "
            "and in your own words: do not list the subjects, do not use headings or bullet points.")},
    ]


PREAMBLE = re.compile(r"^\s*(here('s| is)|sure|certainly|of course)\b[^\n]*:\s*\n", re.IGNORECASE)
HEADING = re.compile(r"^\s*(#+|title:|\*\*)[^\n]*\n", re.IGNORECASE)


def clean_document(text: str) -> str:
    """Drop chat preambles ("Here's an article about...:") and a leading title line, and cut a
    sentence the token budget left unfinished."""
    text = HEADING.sub("", PREAMBLE.sub("", text.strip()))
    text = re.sub(r"[ \t]+", " ", text).strip()
    last_stop = max(text.rfind(". "), text.rfind(".\n"), text.rfind("!"), text.rfind("?"))
    if text and text[-1] not in ".!?\"'" and last_stop > len(text) // 2:
        text = text[:last_stop + 1]
    return text


def verbatim_share(text: str, labels: list[str]) -> float:
    """Share of gold labels that appear word for word (case-insensitive) in the text."""
    from .text import verbatim

    hits = sum(verbatim(text, [label]) for label in labels)
    return hits / len(labels) if labels else 0.0


def to_example(idx: str, text: str, cs: ConceptSet, prompt: str = DEFAULT_PROMPT) -> dict:
    return {
        "id": idx,
        "text": text,
        "uris": cs.uris,
        "labels": cs.labels,
        "micro_thesaurus": cs.micro_thesaurus,
        "prompt": [{"role": "user", "content": prompt.format(text=text)}],
        "completion": [{"role": "assistant", "content": json.dumps(cs.labels, ensure_ascii=False)}],
    }


def generate(th: Thesaurus, cfg: SynthConfig, min_words: int) -> tuple[dict[str, list[dict]], dict]:
    """Sample concept sets and have the teacher write one document each; deterministic for a
    given seed (sampling and generation are both seeded per batch)."""
    rng = random.Random(cfg.seed)
    teacher = make_teacher(cfg.teacher)
    total = cfg.n_train + cfg.n_val + cfg.n_test
    kept: list[tuple[str, ConceptSet]] = []
    seen_sets: set[frozenset] = set()
    seen_texts: set[str] = set()
    rejected = not_discussed = labels_dropped = 0
    discussed = DiscussedFilter(th, cfg.min_discussed) if cfg.min_discussed > 0 else None
    progress = Progress("synth", total, unit="docs")
    batch_no = 0
    while len(kept) < total:
        if not_discussed > 3 * total + 20:
            raise DataError(f"the teacher's documents left fewer than {cfg.min_concepts} discussed concepts "
                            f"{not_discussed} times; lower tagger.synth.min_discussed or improve the teacher")
        if rejected > total + 20:
            raise DataError(f"teacher produced {rejected} unusable documents (empty, shorter than "
                               f"{min_words} words or duplicated); check the teacher model/endpoint")
        batch: list[ConceptSet] = []
        tries = 0
        while len(batch) < cfg.teacher.batch_size:
            tries += 1
            if tries > 1000 * cfg.teacher.batch_size:
                raise DataError(f"could not sample {total} distinct concept sets of {cfg.min_concepts}-"
                                   f"{cfg.max_concepts} concepts from a {len(th)}-concept thesaurus")
            cs = sample_concept_set(th, rng, cfg.min_concepts, cfg.max_concepts)
            if cs and frozenset(cs.uris) not in seen_sets:
                seen_sets.add(frozenset(cs.uris))
                batch.append(cs)
        prompts = [teacher_messages(cs.labels, cfg.target_words,
                                    [describe(th, u) for u in cs.uris] if cfg.describe_subjects else None)
                   for cs in batch]
        texts = teacher.write(prompts, seed=cfg.seed * 100_003 + batch_no)
        batch_no += 1
        for cs, raw in zip(batch, texts):
            text = clean_document(raw)
            key = " ".join(text.split()).lower()
            if len(text.split()) < min_words or key in seen_texts or len(kept) >= total:
                rejected += len(kept) < total
                continue
            if discussed is not None:
                before = len(cs.uris)
                cs = discussed.keep(text, cs, cfg.min_concepts)
                if cs is None:
                    not_discussed += 1
                    continue
                labels_dropped += before - len(cs.uris)
            seen_texts.add(key)
            kept.append((text, cs))
        progress.update(len(kept))
    progress.done()

    bounds = {"train": (0, cfg.n_train), "val": (cfg.n_train, cfg.n_train + cfg.n_val),
              "test": (cfg.n_train + cfg.n_val, total)}
    splits = {name: [to_example(f"{name}-{i - lo:04d}", *kept[i], prompt=cfg.prompt) for i in range(lo, hi)]
              for name, (lo, hi) in bounds.items()}
    shares = [verbatim_share(t, cs.labels) for t, cs in kept]
    words = [len(t.split()) for t, _ in kept]
    stats = {
        "documents": len(kept),
        "rejected_documents": rejected,
        "rejected_not_discussed": not_discussed,
        "labels_dropped_not_discussed": labels_dropped,
        "mean_words": round(sum(words) / len(words), 1),
        "mean_keywords": round(sum(len(cs.uris) for _, cs in kept) / len(kept), 2),
        "verbatim_label_share": round(sum(shares) / len(shares), 4),
        "teacher": f"{cfg.teacher.kind}:{cfg.teacher.model}",
    }
    return splits, stats


class DiscussedFilter:
    """Keeps the gold concepts a document actually discusses: the best cosine between the
    document's windows and the concept's descriptions (label, alt labels, scope note) must reach
    `threshold` (all-MiniLM-L6-v2 by default, the embedding backend's encoder)."""

    def __init__(self, th: Thesaurus, threshold: float, encoder: str = "embedded:all-minilm-l6-v2"):
        from ..core.encoders import load_encoder

        self.th, self.threshold = th, threshold
        self.encoder = load_encoder(encoder)
        self._concepts: dict = {}  # uri -> description vectors (concepts recur across documents)

    def _vectors(self, uri: str):
        from ..core.encoders import embed

        if uri not in self._concepts:
            row = self.th.row(uri)
            texts = [self.th.label[uri]] + strings(row.get("alt_en"))
            if row.get("scope_note"):
                texts.append(f"{self.th.label[uri]}: {row['scope_note']}")
            self._concepts[uri] = embed(self.encoder, texts)
        return self._concepts[uri]

    def similarity(self, text: str, uris: list[str]):
        from ..core.encoders import embed
        from .text import windows

        docs = embed(self.encoder, windows(text, 500))
        return [float((self._vectors(uri) @ docs.T).max()) for uri in uris]

    def keep(self, text: str, cs: ConceptSet, min_concepts: int) -> ConceptSet | None:
        keep = [i for i, s in enumerate(self.similarity(text, cs.uris)) if s >= self.threshold]
        if len(keep) < min_concepts:
            return None
        return ConceptSet([cs.uris[i] for i in keep], [cs.labels[i] for i in keep], cs.micro_thesaurus)


def write_splits(splits: dict[str, list[dict]], out_dir: str | Path, prompt: str = DEFAULT_PROMPT) -> None:
    with atomic_path(out_dir, is_dir=True) as tmp:
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / META).write_text(json.dumps({"prompt": prompt}, indent=2, ensure_ascii=False) + "\n")
        for name, rows in splits.items():
            with (tmp / f"{name}.jsonl").open("w") as fh:
                for row in rows:
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def split_prompt(splits_dir: str | Path) -> str:
    """The prompt the splits were written with (the reference prompt for splits without meta)."""
    path = Path(splits_dir) / META
    return read_json(path, "split metadata").get("prompt", DEFAULT_PROMPT) if path.exists() else DEFAULT_PROMPT


# ---------------------------------------------------------------- the dvc.yaml stage

def run(cfg: "Config") -> dict:
    """Stage `tagger_synth`: concept sets -> teacher-written documents -> splits + stats."""
    from ..core.io import write_json
    from . import paths

    c = cfg.tagger
    splits, stats = generate(Thesaurus.load(paths.CONCEPTS), c.synth, c.contracts.min_text_words)
    write_splits(splits, paths.SFT_DIR, prompt=c.synth.prompt)
    write_json(paths.METRICS_SYNTH, stats)
    get_logger("synth").info("synthetic data: %s", stats)
    return stats
