"""What helps the English educational-value scores? Each try is scored on the English pages
only, two ways: the English val split (20 pages; the figure the pipeline reports) and out-of-fold
predictions of repeated 5-fold cross-validation over English train + val (80 pages; steadier, so
the one to choose by; its Spearman is the mean within held-out folds). The English test split is never read. Figures are Spearman and int-score
macro-F1 with 95% bootstrap CIs; nothing is asserted.

Tries: encoder (MiniLM, multilingual e5, both concatenated), what the head learns from (English
only; + Danish-LLM; + Danish-human), target standardisation per source (each source's scores as
z-scores, mapped back onto the English scale, so a Danish 3 of 0-3 is not read as an English 3 of
2-5), whole-page embeddings (the mean over 256-token chunks instead of the first 256 tokens), and
the heads (ridge, ordinal, MLP). Embeddings come from the edu_embed caches (run that stage
first); chunked ones are computed here for the English pages.

    python benchmarks/edu_english.py [--folds 5] [--repeats 4] [--n-boot 1000] [--no-chunks]
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd


def chunk_mean(spec: dict, texts: list[str], chunk_tokens: int) -> np.ndarray:
    """The mean of a page's chunk embeddings (every `chunk_tokens` tokens), renormalized."""
    from tagflow.core.encoders import load_encoder
    from tagflow.edu.model import encode

    tok = load_encoder(spec["model"]).tokenizer
    chunks, owner = [], []
    for n, text in enumerate(texts):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        for start in range(0, max(len(ids), 1), chunk_tokens - 8):  # room for special/prefix tokens
            chunks.append(tok.decode(ids[start:start + chunk_tokens - 8]))
            owner.append(n)
    vectors = encode(spec, chunks)
    owner = np.asarray(owner)
    out = np.stack([vectors[owner == n].mean(0) for n in range(len(texts))])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def fit_predict(head: str, params: dict, X_tr, y_tr, src_tr, X_te, standardise: bool):
    from tagflow.edu import heads

    y = np.asarray(y_tr, dtype=float)
    if standardise:  # each source's z-scores, put back on the English scale
        en = src_tr == "en_llm"
        mu_en, sd_en = y[en].mean(), y[en].std() or 1.0
        z = np.empty_like(y)
        for s in np.unique(src_tr):
            m = src_tr == s
            z[m] = (y[m] - y[m].mean()) / (y[m].std() or 1.0)
        y = mu_en + sd_en * z
    model = heads.fit(head, params, X_tr, y, seed=13, mlp_hidden=64)
    return model.predict(X_te)


def main() -> None:
    from tagflow.edu.data import load_table
    from tagflow.edu.embed import cache_folder, vectors_for
    from tagflow.edu.metrics import report
    from tagflow.config import load_config

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--no-chunks", action="store_true", help="skip the whole-page (chunk-mean) tries")
    ap.add_argument("--features", default="", help="only tries on these features (comma-separated)")
    ap.add_argument("--min-sources", type=int, default=1, help="only tries learning from this many sources or more")
    ap.add_argument("--no-mlp", action="store_true", help="skip the MLP head (slow on a loaded CPU)")
    ap.add_argument("--chunk-cache", default="artifacts/edu/bench", help="chunk-mean vectors kept here")
    args = ap.parse_args()

    cfg = load_config(args.params).edu
    table = load_table()
    table = table[table["split"].isin(["train", "val"])]  # the test split is never read
    feats: dict[str, dict[str, np.ndarray]] = {}
    for enc in ("en", "multilingual"):
        spec = cfg.embed.encoders[enc]
        folder = cache_folder(spec, cfg.embed.bf16, runtime=cfg.embed.runtime)
        rows = table if enc == "multilingual" else table[table["source"] == "en_llm"]
        feats[enc] = dict(zip(rows["id"], vectors_for(folder, rows["id"].tolist())))
    en = table[table["source"] == "en_llm"].reset_index(drop=True)
    if not args.no_chunks:
        from pathlib import Path

        for enc in ("en", "multilingual"):
            spec = cfg.embed.encoders[enc]
            saved = Path(args.chunk_cache) / f"{enc}-{len(en)}.npy"  # keyed loosely: a scratch cache
            if saved.is_file():
                vecs = np.load(saved)
            else:
                vecs = chunk_mean(spec, en["text"].tolist(), int(spec["max_seq_length"]))
                saved.parent.mkdir(parents=True, exist_ok=True)
                np.save(saved, vecs)
            feats[f"{enc}-chunks"] = dict(zip(en["id"], vecs))

    def X(feature: str, ids) -> np.ndarray:
        parts = feature.split("+")
        return np.hstack([np.stack([feats[p][i] for i in ids]) for p in parts])

    heads_ = [("ridge", {"alpha": a}) for a in (1.0, 10.0, 100.0)] + \
             [("ordinal", {"C": c}) for c in (0.1, 1.0)] + [("mlp", {"alpha": 0.1})]
    tries = [("en", ["en_llm"], False), ("multilingual", ["en_llm"], False),
             ("en+multilingual", ["en_llm"], False),
             ("multilingual", ["en_llm", "da_llm"], False), ("multilingual", ["en_llm", "da_llm"], True),
             ("multilingual", ["en_llm", "da_llm", "da_human"], False),
             ("multilingual", ["en_llm", "da_llm", "da_human"], True)]
    if not args.no_chunks:
        tries += [("en-chunks", ["en_llm"], False), ("multilingual-chunks", ["en_llm"], False),
                  ("en-chunks+multilingual-chunks", ["en_llm"], False)]

    if args.features:
        tries = [t for t in tries if t[0] in args.features.split(",")]
    tries = [t for t in tries if len(t[1]) >= args.min_sources]
    if args.no_mlp:
        heads_ = [h for h in heads_ if h[0] != "mlp"]
    rng = np.random.default_rng(0)
    y_en = en["score"].to_numpy(dtype=float)
    results = []
    for feature, sources, std in tries:
        others = table[table["source"].isin([s for s in sources if s != "en_llm"])
                       & (table["split"] == "train")]
        X_other = X(feature, others["id"]) if len(others) else None
        for head, params in heads_:
            if head == "mlp" and len(others) > 600:
                continue  # minutes per fit on the shared CPU; ridge/ordinal answer the question
            # val split: trained on English train (+ the other sources' train), scored on English val
            tr, va = en["split"] == "train", en["split"] == "val"
            X_tr, y_tr, s_tr = X(feature, en["id"][tr]), y_en[tr], np.array(["en_llm"] * int(tr.sum()))
            if X_other is not None:
                X_tr = np.vstack([X_tr, X_other])
                y_tr = np.concatenate([y_tr, others["score"].to_numpy(dtype=float)])
                s_tr = np.concatenate([s_tr, others["source"].to_numpy()])
            val_pred = fit_predict(head, params, X_tr, y_tr, s_tr, X(feature, en["id"][va]), std)
            val = report(y_en[va], val_pred, n_boot=args.n_boot, seed=0)
            # repeated k-fold over English train + val: out-of-fold predictions, pooled
            X_en = X(feature, en["id"])
            oof_all, fold_ids = [], []
            for r in range(args.repeats):
                fold = rng.permutation(len(en)) % args.folds
                oof = np.empty(len(en))
                for k in range(args.folds):
                    te = fold == k
                    Xt, yt, st = X_en[~te], y_en[~te], np.array(["en_llm"] * int((~te).sum()))
                    if X_other is not None:
                        Xt = np.vstack([Xt, X_other])
                        yt = np.concatenate([yt, others["score"].to_numpy(dtype=float)])
                        st = np.concatenate([st, others["source"].to_numpy()])
                    oof[te] = fit_predict(head, params, Xt, yt, st, X_en[te], std)
                oof_all.append(oof)
                fold_ids.append(r * args.folds + fold)
            # Spearman within each held-out fold, averaged: pooled out-of-fold predictions carry
            # each fold's training-mean shift, which anti-correlates with the held-out labels
            cv = report(np.tile(y_en, args.repeats), np.concatenate(oof_all), n_boot=args.n_boot, seed=0,
                        groups=np.concatenate(fold_ids))
            row = {"features": feature, "train_sources": "+".join(sources), "std_targets": std,
                   "head": head + "".join(f" {k}={v:g}" for k, v in params.items())}
            for name, m in (("val", val), ("cv", cv)):
                row |= {f"{name}_spearman": m["spearman_within"], f"{name}_sp_lo": m["spearman_within_ci_low"],
                        f"{name}_sp_hi": m["spearman_within_ci_high"], f"{name}_macro_f1": m["macro_f1"],
                        f"{name}_f1_lo": m["macro_f1_ci_low"], f"{name}_f1_hi": m["macro_f1_ci_high"]}
            results.append(row)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    frame = pd.DataFrame(results).round(3)
    print(frame.sort_values("cv_spearman", ascending=False).to_string(index=False))


if __name__ == "__main__":
    main()
