"""Tagging-generation throughput of the 135M tagger architecture on one GPU (issue: GPU tagging
speed). Runs the library's own generation loop (`core.generation.generate_chat`: chat template,
left padding, batches formed longest first) on the dev set's chunks, repeated to `--chunks`, at
several batch sizes, with each engine the tagger can use: `generate` (transformers' `generate`,
dynamic cache) and `static` (`core.generation.generate_static`: one preallocated KV cache, fixed
batch shape, each decoding step replayed as a CUDA graph; `static-eager` is the same loop without
the graph, to show what the graph alone buys).

    python benchmarks/gpu_generation.py --model ~/.cache/tagflow/models/smollm2-135m-instruct
    python benchmarks/gpu_generation.py --model DIR --random-weights --new-tokens 48 \
        --settings generate:1024 static:256 static:1024 static:2048

`--random-weights` builds the architecture from DIR's config.json (and its tokenizer) without its
weights: for a machine that cannot receive the weights. Such a model never stops early, so every
answer is forced to exactly `--new-tokens` tokens (a trained tagger stops at its closing bracket,
so its figures are at least these). Prints one table row per setting: chunks/s, documents/s (the
dev set's chunks per document), tokens/s, peak GPU memory.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

PROMPT = "Extract UNESCO Thesaurus keywords from this text:\n\n{text}"


def dev_chunks(chunk_chars: int, overlap: int) -> tuple[list[str], float]:
    """The dev set's chunks (the pipeline's chunker) and chunks per document."""
    import json

    from tagflow.tagger.text import chunk_text

    docs = [json.loads(line)["text"] for f in sorted((ROOT / "devsets/tagger").glob("*.jsonl"))
            for line in f.read_text().splitlines() if line.strip()]
    chunks = [c for d in docs for c in chunk_text(d, chunk_chars, overlap)]
    return chunks, len(chunks) / len(docs)


def load(model_dir: str, random_weights: bool):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16
    if random_weights:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir), dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    return tok, model.to(device).eval(), device


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a causal LM directory (weights, or config + tokenizer)")
    ap.add_argument("--random-weights", action="store_true")
    ap.add_argument("--chunks", type=int, default=2048)
    ap.add_argument("--settings", nargs="+", default=["generate:256", "generate:1024", "static:256", "static:1024"],
                    help="ENGINE:BATCH pairs; engines: generate, static, static-eager")
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--budget-s", type=float, default=float("inf"),
                    help="start no further setting after this many seconds")
    args = ap.parse_args()

    import torch

    from tagflow.core.generation import generate_chat, generate_static

    chunks, per_doc = dev_chunks(3000, 500)
    chunks = (chunks * (args.chunks // len(chunks) + 1))[:args.chunks]
    conversations = [[{"role": "user", "content": PROMPT.format(text=c)}] for c in chunks]
    tok, model, device = load(args.model, args.random_weights)
    forced = {"min_new_tokens": args.new_tokens} if args.random_weights else {}
    print(f"device {device} ({torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}), "
          f"{len(chunks)} chunks, {per_doc:.2f} chunks per dev document, {args.new_tokens} new tokens"
          f"{' (forced: random weights)' if forced else ''}", flush=True)
    engines = {"generate": generate_chat, "static": generate_static,
               "static-eager": lambda *a, **k: generate_static(*a, cuda_graph=False, **k)}
    print("| engine | batch | chunks/s | docs/s | new tokens/s | peak GPU GiB |\n|---|---|---|---|---|---|")
    began = time.perf_counter()
    for setting in args.settings:
        if time.perf_counter() - began > args.budget_s:
            print(f"| {setting} | skipped: past --budget-s |", flush=True)
            continue
        engine, batch = setting.split(":")
        run, batch = engines[engine], int(batch)
        try:
            run(tok, model, conversations[:batch], max_new_tokens=4, batch_size=batch, decode=False)  # warm-up
            if device == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            run(tok, model, conversations, max_new_tokens=args.new_tokens, batch_size=batch, decode=False, **forced)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
        except Exception as exc:  # a benchmark row, not a crash: the other settings still run
            print(f"| {engine} | {batch} | failed: {type(exc).__name__}: {str(exc)[:300]} |", flush=True)
            continue
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else 0.0
        rate = len(chunks) / seconds
        print(f"| {engine} | {batch} | {rate:.1f} | {rate / per_doc:.1f} | {rate * args.new_tokens:.0f} | "
              f"{peak:.1f} |", flush=True)
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
