"""Educational-value inference speed, side by side in one run: a plain fp32 sentence-transformers
`encode()` vs bf16 autocast and the project's path (`tagflow.edu.model.encode`: bf16 weights,
batches sorted by length), and torch's dynamic int8 quantization of the Linear layers, on ~250-token pages (the English annotation pages, read up to 256
tokens), plus what the faster embeddings do to the head's binary F1 and Spearman (a ridge head
trained on fp32 embeddings of the train split, scored on val + test). Figures are printed, not
asserted (shared, noisy machines: best of --repeat runs).

    python benchmarks/edu_speed.py [--encoder embedded:all-minilm-l6-v2] [--pages 100] [--repeat 3]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time

import numpy as np
import pandas as pd


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def main() -> None:
    import torch

    from tagflow.core.encoders import load_encoder, resolve_encoder
    from tagflow.edu import heads
    from tagflow.edu.data import load_table
    from tagflow.edu.metrics import point_metrics
    from tagflow.edu.model import encode

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", default="embedded:all-minilm-l6-v2")
    ap.add_argument("--prefix", default="")
    ap.add_argument("--source", default="en_llm", help="annotation source whose pages are used")
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-seq-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    table = load_table()
    table = table[table["source"] == args.source].head(args.pages)
    texts = table["text"].tolist()
    spec = {"model": args.encoder, "prefix": args.prefix, "max_seq_length": args.max_seq_length}

    from sentence_transformers import SentenceTransformer
    plain = SentenceTransformer(resolve_encoder(args.encoder), device="cpu")
    plain.max_seq_length = args.max_seq_length
    tokens = [min(len(plain.tokenizer(args.prefix + t)["input_ids"]), args.max_seq_length) for t in texts]

    def fp32():
        return plain.encode([args.prefix + t for t in texts], batch_size=args.batch_size,
                            normalize_embeddings=True, convert_to_numpy=True)

    def autocast():
        with torch.inference_mode(), torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            return plain.encode([args.prefix + t for t in texts], batch_size=args.batch_size,
                                normalize_embeddings=True, convert_to_numpy=True)

    def bf16_weights():
        return encode(spec, texts, batch_size=args.batch_size, bf16="on")

    import copy
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(plain), {torch.nn.Linear}, dtype=torch.qint8)

    def int8_dynamic():
        with torch.inference_mode():
            return int8.encode([args.prefix + t for t in texts], batch_size=args.batch_size,
                               normalize_embeddings=True, convert_to_numpy=True)

    load_encoder(args.encoder)  # warm: loading is not inference
    for fn in (fp32, autocast, bf16_weights, int8_dynamic):
        with contextlib.redirect_stdout(None):
            fn()
    rows, vectors = [], {}
    base_s = None
    for name, fn in (("fp32 encode() (plain)", fp32), ("bf16 autocast", autocast),
                     ("bf16 weights (tagflow.edu.model.encode)", bf16_weights),
                     ("int8 dynamic, torch (per-tensor)", int8_dynamic)):
        seconds, vecs = timed(fn, args.repeat)
        vectors[name] = np.asarray(vecs, dtype=np.float32)
        base_s = base_s or seconds
        unit = vectors[name] / np.linalg.norm(vectors[name], axis=1, keepdims=True)
        cos = float(np.mean(np.sum(unit * vectors["fp32 encode() (plain)"], axis=1)))
        rows.append({"path": name, "docs_per_s": round(len(texts) / seconds, 1),
                     "speedup": round(base_s / seconds, 2), "mean_cosine_to_fp32": round(cos, 5)})

    # accuracy: a ridge head trained on fp32 train embeddings, scored on val+test with each path
    split = table["split"].to_numpy()
    y = table["score"].to_numpy(dtype=float)
    train, held = split == "train", split != "train"
    head = heads.fit("ridge", {"alpha": 10.0}, vectors["fp32 encode() (plain)"][train], y[train])
    ref = point_metrics(y[held], head.predict(vectors["fp32 encode() (plain)"][held]))
    for row in rows:
        m = point_metrics(y[held], head.predict(vectors[row["path"]][held]))
        row |= {"binary_f1": round(m["binary_f1"], 4), "spearman": round(m["spearman"], 4),
                "d_binary_f1": round(m["binary_f1"] - ref["binary_f1"], 4),
                "d_spearman": round(m["spearman"] - ref["spearman"], 4)}
    print(f"encoder {args.encoder}, {len(texts)} pages of {args.source}, mean {np.mean(tokens):.0f} tokens "
          f"(max {args.max_seq_length}), batch {args.batch_size}, {torch.get_num_threads()} threads, "
          f"best of {args.repeat}; head scored on {int(held.sum())} held-out pages")
    print(pd.DataFrame(rows).to_string(index=False))
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
