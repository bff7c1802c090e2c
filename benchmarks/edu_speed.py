"""Educational-value inference speed, side by side in one run: a plain fp32 sentence-transformers
`encode()` vs the project's runtimes (`tagflow.edu.model.encode`, the code evaluation, predict and
serving run): `torch` with bf16 weights, `torch-compile` (the same weights compiled by inductor
with freezing) and `onnx-int8` (onnxruntime, int8 per-channel weights), all with pages sorted by
length and padded per batch, on ~250-token pages (a setup's annotation pages, read up to 256
tokens).

Accuracy: each path's embeddings go through the setup's real head recipe (kind and parameters from
its model card, `artifacts/edu/models/<setup>/card.json`), fitted on that path's train-split
embeddings and scored on the val split, as the pipeline would with `edu.embed.runtime` set to it;
the change in binary F1@3 and Spearman is against the fp32 path.

Timing: the paths run in turn, `--repeat` rounds (so a load change on a shared machine hits all
of them); the median round is reported, and the speed-up is the median of the per-round ratios.
`warm_s` is each path's first call (loading, exporting, compiling: paid once per process, or once
per machine for the ONNX export), outside the rounds. Figures are printed, not asserted.

    python benchmarks/edu_speed.py [--setup en] [--repeat 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time

import numpy as np
import pandas as pd


def main() -> None:
    import torch

    from tagflow.edu import heads, paths
    from tagflow.edu.data import load_table
    from tagflow.edu.metrics import point_metrics
    from tagflow.edu.model import EduScorer, encode

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setup", default="en", help="model folder whose encoder, sources and head are used")
    ap.add_argument("--model-dir", default=None, help="default: artifacts/edu/models/<setup>")
    ap.add_argument("--encoder", default=None, help="override the card's encoder (a path or id)")
    ap.add_argument("--pages", type=int, default=0, help="at most this many pages (0: all of the setup's "
                                                         "train + val pages)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=0, help="torch and onnxruntime threads (0: torch's default)")
    ap.add_argument("--only", nargs="*", default=None, help="runtimes to time beside fp32 (default: all), "
                                                           "e.g. torch-compile onnx-int8")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    card = EduScorer.load(args.model_dir or paths.model_dir(args.setup)).card
    spec = dict(card["encoder"])
    if args.encoder:
        spec["model"] = args.encoder
    table = load_table()
    table = table[table["source"].isin(card["train"]["sources"]) & table["split"].isin(["train", "val"])]
    if args.pages:
        table = table.head(args.pages)
    texts = table["text"].tolist()
    prefix, length = spec.get("prefix", ""), int(spec["max_seq_length"])

    from sentence_transformers import SentenceTransformer

    from tagflow.core.encoders import resolve_encoder

    plain = SentenceTransformer(resolve_encoder(spec["model"]), device="cpu")
    plain.max_seq_length = length
    tokens = [min(len(ids), length) for ids in plain.tokenizer([prefix + t for t in texts])["input_ids"]]

    paths_ = {
        "fp32 encode() (plain sentence-transformers)": lambda: plain.encode(
            [prefix + t for t in texts], batch_size=args.batch_size, normalize_embeddings=True,
            convert_to_numpy=True),
        "torch, bf16 weights (edu.embed.runtime: torch)": lambda: encode(
            spec, texts, batch_size=args.batch_size, bf16="on", runtime="torch"),
        "torch-compile, bf16 weights (edu.embed.runtime: torch-compile)": lambda: encode(
            spec, texts, batch_size=args.batch_size, bf16="on", runtime="torch-compile"),
        "onnx-int8, per-channel int8 weights (edu.embed.runtime: onnx-int8)": lambda: encode(
            spec, texts, batch_size=args.batch_size, runtime="onnx-int8"),
    }
    if args.only:
        paths_ = {name: fn for n, (name, fn) in enumerate(paths_.items()) if n == 0 or name.split(",")[0] in args.only}
    warm: dict[str, float] = {}
    with contextlib.redirect_stdout(None):  # warm: loading, exporting and first calls are not inference
        for name, fn in paths_.items():
            started = time.perf_counter()
            fn()
            warm[name] = time.perf_counter() - started
    seconds: dict[str, list[float]] = {name: [] for name in paths_}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeat):
        for name, fn in paths_.items():
            started = time.perf_counter()
            with torch.inference_mode():
                vectors[name] = np.asarray(fn(), dtype=np.float32)
            seconds[name].append(time.perf_counter() - started)

    base = next(iter(paths_))
    split = table["split"].to_numpy()
    y = table["score"].to_numpy(dtype=float)
    train, val = split == "train", split == "val"
    kind, params = card["head"]["kind"], card["head"]["params"]
    rows, ref = [], None
    for name in paths_:
        ratios = [b / s for b, s in zip(seconds[base], seconds[name])]
        cos = float(np.mean(np.sum(vectors[name] * vectors[base], axis=1)
                            / np.linalg.norm(vectors[name], axis=1)))
        row = {"path": name, "docs_per_s": round(len(texts) / statistics.median(seconds[name]), 1),
               "speedup": round(statistics.median(ratios), 2),
               "speedup_range": f"{min(ratios):.2f}-{max(ratios):.2f}", "cosine_to_fp32": round(cos, 5),
               "warm_s": round(warm[name], 1)}
        if train.any() and val.any():
            head = heads.fit(kind, params, vectors[name][train], y[train], seed=13)
            m = point_metrics(y[val], head.predict(vectors[name][val]))
            ref = ref or m
            row |= {"val_binary_f1": round(m["binary_f1"], 4), "val_spearman": round(m["spearman"], 4),
                    "d_binary_f1": round(m["binary_f1"] - ref["binary_f1"], 4),
                    "d_spearman": round(m["spearman"] - ref["spearman"], 4)}
        rows.append(row)
    print(f"setup {args.setup}: encoder {spec['model']}, {len(texts)} pages of {card['train']['sources']}, "
          f"mean {np.mean(tokens):.0f} tokens (max {length}), batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads, {args.repeat} rounds; head {kind} {params} refitted per path "
          f"on {int(train.sum())} train pages, scored on {int(val.sum())} val pages")
    print(pd.DataFrame(rows).to_string(index=False))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
