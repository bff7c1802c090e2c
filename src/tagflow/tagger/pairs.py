"""Preference pairs from the SFT model's own samples (the semantic-tagging-with-IPO recipe).

For each training prompt the SFT model samples k answers (free generation: constrained decoding
would make format errors impossible, and format is half of what the pairs teach). Answers with
the same text count once. Then, per prompt:
- a *format* pair when some answers are valid (a JSON array of 1..max_keywords non-empty strings,
  nothing else) and some are not: the best valid one is chosen, an invalid one rejected. Format
  pairs are capped at `format_share` of all pairs;
- *semantic* pairs between valid answers with different keyword sets: the chosen one has the
  higher cosine between the text's embedding (windows averaged for long texts) and the embedding
  of its keywords joined by commas. Pairs are split at the median margin into small and large
  margins; each prompt gives at most one pair per bin (`pairs_per_prompt`), and the larger bin is
  cut to the smaller one's size (`balance_margins`).
On the semantic pairs two more signals are compared with the cosine: F1 of the answer's concepts
against the gold concepts, and the share of its keywords that are thesaurus labels.

In tag mode (`mode: tags`, tagger.tagmode) the prompts are the recipe's tag instruction over texts
outside the thesaurus task, validity is tagmode.check_tags and the cosine is taken to the tags
joined by commas; there is no gold answer and no thesaurus signal there.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import json
import random
import statistics
from dataclasses import dataclass
from itertools import combinations

import pandas as pd

from ..core.errors import DataError
from ..core.log import Progress, get_logger
from .config import PairsConfig

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("pairs")
KINDS = ("format", "semantic")


@dataclass
class Candidate:
    text: str                       # the answer as generated
    keywords: list[str] | None      # its keywords when the answer is valid, else None
    cosine: float | None = None     # tag-to-text cosine (valid answers)
    source: str = "sample"          # sample (the SFT model's) | gold (the split's reference answer)


def answer_keywords(raw: str, max_keywords: int) -> list[str] | None:
    """The keywords of a format-valid answer, None otherwise. Valid = the whole answer is a JSON
    array of 1..max_keywords non-empty strings (stricter than the llm backend's lenient parse,
    which also reads an array followed by chatter)."""
    try:
        value = json.loads(raw.strip())
    except ValueError:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= max_keywords:
        return None
    if not all(isinstance(v, str) and v.strip() for v in value):
        return None
    return [v.strip() for v in value]


def answer_parser(cfg: PairsConfig) -> Callable[[str], list[str] | None]:
    """raw answer -> its keywords (or tags) when valid in the configured mode, else None."""
    if cfg.mode == "tags":
        from .tagmode import parse_tags

        return lambda raw: parse_tags(raw, cfg.tags)
    return lambda raw: answer_keywords(raw, cfg.max_keywords)


def _keyset(c: Candidate) -> frozenset[str]:
    return frozenset(k.casefold() for k in c.keywords or [])


def _f1(pred: set[str], gold: set[str]) -> float:
    hits = len(pred & gold)
    return 2 * hits / (len(pred) + len(gold)) if pred and gold else 0.0


def _row(item: dict, chosen: Candidate, rejected: Candidate, kind: str, margin_bin: str = "") -> dict:
    margin = (chosen.cosine - rejected.cosine) if kind == "semantic" else None
    suffix = f"-{margin_bin}" if margin_bin else ""     # one pair per prompt, kind and bin
    return {"id": f"{item['id']}-{kind}{suffix}", "source_id": item["id"], "kind": kind,
            "prompt": item["prompt"],
            "chosen": [{"role": "assistant", "content": chosen.text}],
            "rejected": [{"role": "assistant", "content": rejected.text}],
            "chosen_source": chosen.source, "rejected_source": rejected.source,
            "chosen_cosine": chosen.cosine, "rejected_cosine": rejected.cosine,
            "margin": None if margin is None else round(margin, 6), "margin_bin": margin_bin,
            "gold_uris": list(item.get("uris") or [])}


def _signals(pair: dict, resolve: Callable[[str], str | None]) -> dict:
    """F1 against gold and the share of thesaurus labels, for chosen and rejected."""
    out = {}
    gold = set(pair["gold_uris"])
    for side in ("chosen", "rejected"):
        keywords = json.loads(pair[side][0]["content"])
        uris = [resolve(k) for k in keywords]
        out[f"{side}_f1"] = round(_f1({u for u in uris if u}, gold), 6)
        out[f"{side}_thesaurus_share"] = round(sum(u is not None for u in uris) / len(uris), 6)
    return out


def _agreement(pairs: list[dict]) -> dict:
    """How the F1 and thesaurus-label signals agree with the cosine (which chose), and with each
    other; ties (equal scores) are counted apart. rate = agree / (agree + disagree)."""
    def tally(signs: list[tuple[int, int]]) -> dict:
        agree = sum(a * b > 0 for a, b in signs)
        disagree = sum(a * b < 0 for a, b in signs)
        tie = len(signs) - agree - disagree
        return {"agree": agree, "disagree": disagree, "tie": tie,
                "rate": round(agree / (agree + disagree), 4) if agree + disagree else None}

    def sign(x: float) -> int:
        return (x > 1e-12) - (x < -1e-12)

    f1 = [sign(p["chosen_f1"] - p["rejected_f1"]) for p in pairs]
    th = [sign(p["chosen_thesaurus_share"] - p["rejected_thesaurus_share"]) for p in pairs]
    return {"pairs": len(pairs), "cosine_vs_f1": tally([(1, s) for s in f1]),
            "cosine_vs_thesaurus": tally([(1, s) for s in th]),
            "f1_vs_thesaurus": tally(list(zip(f1, th)))}


def build_pairs(items: list[dict], cfg: PairsConfig,
                resolve: Callable[[str], str | None] | None = None) -> tuple[list[dict], dict]:
    """(pairs, stats) from items {"id", "prompt", "uris", "candidates": [Candidate]} whose valid
    candidates carry their cosine. `resolve(label) -> uri | None` adds the F1 and thesaurus
    signals to semantic pairs and their agreement to the stats. Deterministic for cfg.seed."""
    rng = random.Random(cfg.seed)
    format_pool: list[dict] = []
    options_per_item: list[tuple[dict, list[tuple[float, Candidate, Candidate]]]] = []
    generations = valid_count = 0
    for item in items:
        unique: dict[str, Candidate] = {}
        for c in item["candidates"]:
            if c.source == "sample":
                generations += 1
                valid_count += c.keywords is not None
            unique.setdefault(c.text.strip(), c)
        valid = [c for c in unique.values() if c.keywords is not None]
        invalid = [c for c in unique.values() if c.keywords is None]
        if any(c.cosine is None for c in valid):
            raise DataError(f"{item['id']}: a valid candidate has no cosine")
        if valid and invalid:
            format_pool.append(_row(item, max(valid, key=lambda c: c.cosine), invalid[0], "format"))
        options = []
        for a, b in combinations(valid, 2):
            if _keyset(a) == _keyset(b):
                continue   # the same keywords in another order or case: nothing to prefer
            hi, lo = (a, b) if a.cosine >= b.cosine else (b, a)
            if hi.cosine - lo.cosine > cfg.min_margin:
                options.append((hi.cosine - lo.cosine, hi, lo))
        options_per_item.append((item, sorted(options, key=lambda o: -o[0])))

    margins = [m for _, options in options_per_item for m, _, _ in options]
    split = statistics.median(margins) if margins else 0.0
    bins: dict[str, list[dict]] = {"small": [], "large": []}
    for item, options in options_per_item:
        taken = 0
        for name in ("large", "small"):   # per prompt: the widest margin of each bin
            pick = next((o for o in options if (o[0] >= split) == (name == "large")), None)
            if pick is not None and taken < cfg.pairs_per_prompt:
                bins[name].append(_row(item, pick[1], pick[2], "semantic", name))
                taken += 1
    available = {name: len(rows) for name, rows in bins.items()}
    if cfg.balance_margins and all(bins.values()):
        keep = min(len(rows) for rows in bins.values())
        bins = {name: _sample(rows, keep, rng) for name, rows in bins.items()}
    semantic = bins["large"] + bins["small"]

    share = cfg.format_share
    cap = len(format_pool) if share >= 1.0 else int(share * len(semantic) / (1.0 - share) + 1e-9)
    formats = _sample(format_pool, min(cap, len(format_pool)), rng)
    pairs = formats + semantic
    if resolve is not None:
        for pair in semantic:
            pair |= _signals(pair, resolve)
    stats = {
        "prompts": len(items), "generations": generations,
        "valid_rate": round(valid_count / generations, 4) if generations else 0.0,
        "pairs": len(pairs), "format_pairs": len(formats), "semantic_pairs": len(semantic),
        "format_share": round(len(formats) / len(pairs), 4) if pairs else 0.0,
        "format_pairs_available": len(format_pool), "semantic_pairs_available": available,
        "margin_split": round(split, 6),
        "small_margin_pairs": len(bins["small"]), "large_margin_pairs": len(bins["large"]),
        "mean_margin": round(statistics.fmean(p["margin"] for p in semantic), 6) if semantic else None,
    }
    if resolve is not None:
        stats["agreement"] = _agreement(semantic)
    return pairs, stats


def _sample(rows: list[dict], n: int, rng: random.Random) -> list[dict]:
    """n of rows, chosen at random but kept in their original order."""
    keep = sorted(rng.sample(range(len(rows)), n))
    return [rows[i] for i in keep]


# ---------------------------------------------------------------- generation and scoring

def tag_text_cosines(encoder, texts: list[str], keyword_lists: list[list[str]], window_chars: int) -> list[float]:
    """Cosine between each text (its windows' embeddings averaged, then normalized) and its
    keywords joined by commas."""
    import numpy as np

    from ..core.encoders import embed
    from .text import windows

    if not texts:
        return []
    pieces = [windows(t, window_chars) for t in texts]
    flat = embed(encoder, [w for ws in pieces for w in ws])
    doc, start = [], 0
    for ws in pieces:
        v = flat[start:start + len(ws)].mean(axis=0)
        doc.append(v / max(float(np.linalg.norm(v)), 1e-12))
        start += len(ws)
    tags = embed(encoder, [", ".join(k) for k in keyword_lists])
    return [round(float(d @ t), 6) for d, t in zip(doc, tags)]


def sample_answers(tok, model, rows: list[dict], cfg: PairsConfig) -> list[list[str]]:
    """k sampled answers per row (round j over all prompts is seeded cfg.seed + j, so the same
    prompt gets different samples in different rounds)."""
    from ..core.generation import generate_chat

    progress = Progress("pairs", cfg.k * len(rows), unit="generations")
    rounds = []
    for j in range(cfg.k):
        rounds.append(generate_chat(tok, model, [r["prompt"] for r in rows], max_new_tokens=cfg.max_new_tokens,
                                    batch_size=cfg.batch_size, sample=True, temperature=cfg.temperature,
                                    seed=cfg.seed + j))
        progress.update((j + 1) * len(rows))
    progress.done()
    return [[answers[i] for answers in rounds] for i in range(len(rows))]


def score_candidates(rows: list[dict], answers: list[list[str]], cfg: PairsConfig, encoder) -> list[dict]:
    """Items for build_pairs: each answer parsed, valid ones with their tag-to-text cosine."""
    parse = answer_parser(cfg)
    items, texts, keywords, slots = [], [], [], []
    for row, raws in zip(rows, answers):
        cands = [Candidate(raw, parse(raw)) for raw in raws]
        if cfg.include_gold and row.get("completion"):   # the reference answer competes too (off-policy;
            gold = row["completion"][0]["content"]          # see PairsConfig); tag-mode texts have none
            cands.append(Candidate(gold, parse(gold), source="gold"))
        for c in cands:
            if c.keywords is not None:
                texts.append(row["text"])
                keywords.append(c.keywords)
                slots.append(c)
        items.append({"id": row["id"], "prompt": row["prompt"], "uris": row.get("uris", []), "candidates": cands})
    for c, cos in zip(slots, tag_text_cosines(encoder, texts, keywords, cfg.window_chars)):
        c.cosine = cos
    return items


# ---------------------------------------------------------------- contract

def pairs_frame(pairs: list[dict]) -> pd.DataFrame:
    """The pairs, one row each, with helper columns that must be empty when the pair is sound."""
    from .contracts import _message_content

    records = []
    for p in pairs:
        chosen = _message_content(p.get("chosen"), "assistant")
        rejected = _message_content(p.get("rejected"), "assistant")
        records.append({
            "id": p.get("id"), "kind": p.get("kind"),
            "prompt_content": _message_content(p.get("prompt"), "user") or None,
            "chosen_content": chosen, "rejected_content": rejected,
            "chosen_equals_rejected": chosen if chosen is not None and chosen == rejected else None,
            "semantic_without_margin": (p.get("id") if p.get("kind") == "semantic"
                                        and not (p.get("margin") or 0) > 0 else None),
            "is_format": float(p.get("kind") == "format"),
        })
    return pd.DataFrame.from_records(records, columns=[
        "id", "kind", "prompt_content", "chosen_content", "rejected_content",
        "chosen_equals_rejected", "semantic_without_margin", "is_format"])


def check_pairs(pairs: list[dict], cfg: PairsConfig, site_dir):
    """Great Expectations: chosen differs from rejected, a prompt is present, kinds known, ids
    unique, semantic pairs have a positive margin, the format share is within bounds."""
    from ..core.contracts import gx_expectations, validate

    gxe = gx_expectations()
    expectations = [
        gxe.ExpectTableRowCountToBeBetween(min_value=cfg.min_pairs),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValuesToNotBeNull(column="prompt_content"),
        gxe.ExpectColumnValuesToNotBeNull(column="chosen_content"),
        gxe.ExpectColumnValuesToNotBeNull(column="rejected_content"),
        gxe.ExpectColumnValuesToBeNull(column="chosen_equals_rejected"),
        gxe.ExpectColumnValuesToBeNull(column="semantic_without_margin"),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(KINDS)),
        gxe.ExpectColumnMeanToBeBetween(column="is_format", min_value=0.0, max_value=cfg.format_share),
    ]
    return validate([("tagger.pairs", pairs_frame(pairs), expectations)], site_dir, index_column="id")


# ---------------------------------------------------------------- the dvc.yaml stage

def run(cfg: "Config") -> dict:
    """Stage `tagger_pairs`: sample, score, pair, check; pairs.jsonl + metrics/pairs.json."""
    from pathlib import Path

    from ..core.encoders import load_encoder
    from ..core.io import write_json, write_jsonl
    from ..thesaurus import Thesaurus
    from . import paths
    from .evaluate import load_split
    from .sft import load_adapter, no_adapter
    from .tagmode import problem_counts, tag_rows, text_id

    c = cfg.tagger
    if not paths.uses_adapter(c.infer.backend):
        stats = {"skipped": no_adapter(c.infer.backend)}
        write_jsonl(paths.PAIRS, [])
        # the contract report folder is a stage output too: DVC fails a stage that leaves it out
        write_json(Path(paths.CONTRACTS_DIR) / "pairs" / "skipped.json", stats)
        write_json(paths.METRICS_PAIRS, stats)
        return stats
    if c.pairs.mode == "tags":
        rows, resolve = tag_rows(c.pairs, "pairs"), None   # no gold, no thesaurus for free tags
    else:
        rows = load_split(paths.SFT_DIR, "train")
        rows = rows[:c.pairs.max_prompts] if c.pairs.max_prompts > 0 else rows
        resolve = Thesaurus.load(paths.CONCEPTS).resolve
    tok, model, _ = load_adapter(paths.ADAPTER_DIR)
    answers = sample_answers(tok, model, rows, c.pairs)
    del model
    items = score_candidates(rows, answers, c.pairs, load_encoder(c.pairs.encoder))
    pairs, stats = build_pairs(items, c.pairs, resolve)
    stats["mode"] = c.pairs.mode
    if c.pairs.mode == "tags":   # why samples fail, and which texts were used (the source is no DVC dep)
        stats["problems"] = problem_counts([a for raws in answers for a in raws], c.pairs.tags)
        stats["texts"] = {"source": c.pairs.tags.texts, "count": len(rows),
                          "digest": text_id("".join(r["id"] for r in rows))}
    report = check_pairs(pairs, c.pairs, Path(paths.CONTRACTS_DIR) / "pairs")   # raises on failure
    stats["contract"] = {"expectations": len(report.results), "failed": len(report.failures)}
    write_jsonl(paths.PAIRS, pairs)
    write_json(paths.METRICS_PAIRS, stats)
    log.info("preference pairs: %s", stats)
    return stats
