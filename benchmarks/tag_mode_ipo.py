"""Tag mode before and after IPO, small and honest: the recipe's own task ([tag1][tag2][tag3] on
texts outside the thesaurus) with a policy that has not been taught it (the base
SmolLM2-135M-Instruct, or any SFT adapter dir), through the library's own functions. The base
135M model never answers in the tag form (it paraphrases), so `--sft-steps N` first teaches the
form with a short LoRA SFT whose answers are the Reuters topic codes of pair-part texts
(`[grain][wheat]`; only with a Reuters source), and that SFT model is the policy:

  texts (tagger.pairs.tags.texts, split by content hash: held-out evaluation texts are never paired)
  -> k sampled answers per pair text -> tag validity + tag-to-text cosine -> pairs (format/semantic)
  -> GX contract -> IPO (TRL DPOTrainer, loss ipo, a new LoRA; reference = the policy)
  -> greedy answers of the policy and of policy+IPO on the held-out texts

Prints one JSON report: pair counts, why sampled answers were invalid, IPO loss/time, and per model
the format-valid rate (Wilson 95% interval), the mean cosine of valid answers (normal 95%
interval), plus the paired cosine change on texts valid before and after.

    nice -n 10 python benchmarks/tag_mode_ipo.py --texts data/reuters21578 --pair-texts 24 --eval-texts 40 \
        --k 4 --max-text-chars 400 --sft-steps 20 --ipo-steps 12 --ipo-lr 2e-4     # the README's run
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tagflow.config import load_config  # noqa: E402
from tagflow.core.encoders import load_encoder  # noqa: E402
from tagflow.core.io import write_jsonl  # noqa: E402
from tagflow.core.log import configure  # noqa: E402
from tagflow.tagger import ipo  # noqa: E402
from tagflow.tagger.pairs import answer_parser, build_pairs, check_pairs, sample_answers, score_candidates  # noqa: E402
from tagflow.tagger.prefeval import answer_quality, free_answers  # noqa: E402
from tagflow.tagger.sft import ADAPTER_META, load_adapter  # noqa: E402
from tagflow.tagger.tagmode import problem_counts, tag_rows  # noqa: E402


def base_policy(base_model: str, prompt: str, out: Path) -> Path:
    """A model dir for the base model alone (no adapters), so it runs through the same code."""
    out.mkdir(parents=True, exist_ok=True)
    (out / ADAPTER_META).write_text(json.dumps({"base_model": base_model, "prompt": prompt, "adapters": []}) + "\n")
    return out


def paired_change(before: list, after: list) -> dict:
    """Mean cosine change (after - before) on texts with a valid answer both times, 95% interval."""
    diffs = [a - b for b, a in zip(before, after) if a is not None and b is not None]
    n = len(diffs)
    if n < 2:
        return {"n": n}
    mean = sum(diffs) / n
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1) / n)
    return {"n": n, "mean": round(mean, 4), "ci95": [round(mean - 1.96 * se, 4), round(mean + 1.96 * se, 4)],
            "unchanged_answers": None}


def reuters_sft_splits(source: str, pair_texts: set[str], cfg, n: int, out: Path) -> Path:
    """SFT rows (tag prompt -> the story's topic codes as tags, at most max_tags) for up to n
    pair-part stories with topics; never a held-out text. train.jsonl and a 4-row val.jsonl."""
    from tagflow.tagger.tagmode import cut, text_id
    from tagflow.topics.reuters import read_dir

    frame = read_dir(source)
    rows = []
    for body, topics in zip(frame["body"], frame["topics"]):
        body = (body or "").strip()
        if not topics or body not in pair_texts:
            continue
        shown = cut(body, cfg.max_text_chars)
        answer = "".join(f"[{t.replace('-', ' ')}]" for t in topics[:cfg.max_tags])
        rows.append({"id": text_id(body), "prompt": [{"role": "user", "content": cfg.prompt.format(text=shown)}],
                     "completion": [{"role": "assistant", "content": answer}]})
    rows.sort(key=lambda r: r["id"])
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", rows[4:4 + n])
    write_jsonl(out / "val.jsonl", rows[:4])
    return out


def per_text_cosines(texts, answers, encoder, parse, window_chars) -> list:
    """The cosine of each text's answer, None where it is invalid (for the paired comparison)."""
    _, cos = answer_quality(texts, answers, encoder, parse, window_chars)
    it = iter(cos)
    return [next(it) if parse(a) is not None else None for a in answers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", help="tag-mode text source (default: params.yaml tagger.pairs.tags.texts)")
    ap.add_argument("--policy", default="base", help="'base' (the SFT base model alone) or an SFT adapter dir")
    ap.add_argument("--pair-texts", type=int, default=48)
    ap.add_argument("--eval-texts", type=int, default=60)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--format-share", type=float, default=None, help="default: params.yaml")
    ap.add_argument("--ipo-steps", type=int, default=12)
    ap.add_argument("--ipo-lr", type=float, default=None, help="default: params.yaml")
    ap.add_argument("--sft-steps", type=int, default=0, help="> 0: a short SFT on Reuters topic tags first")
    ap.add_argument("--max-text-chars", type=int, default=None, help="default: params.yaml")
    ap.add_argument("--out", default="artifacts/bench_tag_mode")
    args = ap.parse_args()
    configure()   # progress lines (sampling, training steps) on stderr

    cfg = load_config(ROOT / "params.yaml", profile="cpu").tagger
    tags = dataclasses.replace(cfg.pairs.tags, texts=args.texts or cfg.pairs.tags.texts, eval_texts=args.eval_texts,
                               max_text_chars=args.max_text_chars or cfg.pairs.tags.max_text_chars)
    pcfg = dataclasses.replace(cfg.pairs, mode="tags", tags=tags, max_prompts=args.pair_texts, k=args.k,
                               max_new_tokens=args.max_new_tokens, include_gold=False,
                               format_share=cfg.pairs.format_share if args.format_share is None else args.format_share)
    icfg = dataclasses.replace(cfg.ipo, max_steps=args.ipo_steps, batch_size=2, max_length=512,
                               learning_rate=cfg.ipo.learning_rate if args.ipo_lr is None else args.ipo_lr)
    out = Path(args.out)
    policy = base_policy(cfg.sft.base_model, tags.prompt, out / "base") if args.policy == "base" else Path(args.policy)
    if args.sft_steps > 0:
        from tagflow.tagger import sft
        from tagflow.tagger.tagmode import read_texts, split_texts

        pair_part = set(split_texts(read_texts(tags.texts), tags.eval_texts)[0])
        splits = reuters_sft_splits(tags.texts, pair_part, tags, 2 * args.sft_steps, out / "sft_data")
        scfg = dataclasses.replace(cfg.sft, max_steps=args.sft_steps, batch_size=2, max_length=512)
        report_sft = sft.train(scfg, splits, out / "sft", log_to_mlflow=False, prompt=tags.prompt)
        policy = out / "sft"
    encoder = load_encoder(pcfg.encoder)
    parse = answer_parser(pcfg)
    report: dict = {"policy": "sft" if args.sft_steps > 0 else args.policy, "texts": tags.texts,
                    "settings": {k: getattr(pcfg, k) for k in ("k", "temperature", "max_new_tokens", "format_share")}
                    | {"ipo_steps": icfg.max_steps, "ipo_lr": icfg.learning_rate, "beta": icfg.beta,
                       "sft_steps": args.sft_steps, "max_text_chars": tags.max_text_chars}}

    if args.sft_steps > 0:
        report["sft"] = report_sft
    rows = tag_rows(pcfg, "pairs")
    t0 = time.monotonic()
    tok, model, _ = load_adapter(policy)
    answers = sample_answers(tok, model, rows, pcfg)
    del model
    report["sampling_seconds"] = round(time.monotonic() - t0, 1)
    report["sample_problems"] = problem_counts([a for raws in answers for a in raws], tags)
    (out / "samples.json").write_text(json.dumps(answers, indent=1) + "\n")
    pairs, stats = build_pairs(score_candidates(rows, answers, pcfg, encoder), pcfg)
    report["pairs"] = {k: stats[k] for k in ("prompts", "generations", "valid_rate", "pairs", "format_pairs",
                                              "semantic_pairs", "format_pairs_available", "mean_margin")}
    print(json.dumps(report, indent=2), flush=True)
    check_pairs(pairs, pcfg, out / "contract")   # raises when there are no pairs to train on
    write_jsonl(out / "pairs.jsonl", pairs)

    report["ipo"] = ipo.train(icfg, policy, out / "pairs.jsonl", out / "ipo", log_to_mlflow=False)

    held = tag_rows(pcfg, "eval")
    texts = [r["text"] for r in held]
    per_model = {}
    for name, model_dir in (("before", policy), ("after", out / "ipo")):
        greedy = free_answers(model_dir, texts, pcfg.max_new_tokens, pcfg.batch_size, prompt=tags.prompt)
        quality, _ = answer_quality(texts, greedy, encoder, parse, pcfg.window_chars)
        report[name] = quality | {"problems": problem_counts(greedy, tags)}
        per_model[name] = (greedy, per_text_cosines(texts, greedy, encoder, parse, pcfg.window_chars))
    (out / "greedy.json").write_text(json.dumps({n: g for n, (g, _) in per_model.items()}, indent=1) + "\n")
    change = paired_change(per_model["before"][1], per_model["after"][1])
    change["unchanged_answers"] = sum(a == b for a, b in zip(per_model["before"][0], per_model["after"][0]))
    report["paired_cosine_change"] = change
    report["examples"] = [{"before": b, "after": a} for b, a in zip(per_model["before"][0][:5], per_model["after"][0][:5])]
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
