"""Topic classifiers side by side on the validation split, without DVC or MLflow: the data stage's
table built in memory from an SGML folder, one candidate fitted per invocation (so peak memory is
its own), scored as `topics_evaluate` scores (0.5 and per-class thresholds: from the training
split's cross-validated scores with `threshold_folds=5`, else tuned on validation and cross-fitted;
95% bootstrap CIs, all labels and the top 10). With `threshold_folds` it also scores the
out-of-fold predictions over the training split (`cv_train`: thresholds tuned on the other folds'
scores; `cv_train_2plus`: only labels with at least 2 training documents). Prints one line per
scope and writes a JSON report.

    python benchmarks/topics_backbones.py --raw data/reuters21578 svm C=0.5 class_weight=balanced
    python benchmarks/topics_backbones.py --raw data/reuters21578 transformer max_length=256 epochs=2

Parameters not named keep params.yaml's base values (`topics.train.<kind>`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from tagflow.core.log import configure
from tagflow.topics import metrics as M
from tagflow.topics.classifiers import make_classifier
from tagflow.topics.config import DataConfig, SvmConfig, TransformerConfig
from tagflow.topics.data import build_table, label_matrix, texts_of
from tagflow.topics.evaluate import score_split
from tagflow.topics.reuters import read_dir
from tagflow.topics.thresholds import out_of_fold_scores, thresholds_record
from tagflow.topics.train import peak_rss_mb

DEFAULTS = {"svm": SvmConfig, "transformer": TransformerConfig}


def parse_overrides(pairs: list[str]) -> dict:
    return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--raw", default="data/reuters21578", help="folder of reut2-*.sgm files")
    ap.add_argument("--label-set", default="all", choices=["all", "top10"])
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--max-train-docs", type=int, default=0, help="a sample (quick checks)")
    ap.add_argument("--max-val-docs", type=int, default=0)
    ap.add_argument("--out", default="", help="write the report here (JSON)")
    ap.add_argument("kind", choices=sorted(DEFAULTS))
    ap.add_argument("overrides", nargs="*", help="key=value over params.yaml's topics.train.<kind>")
    args = ap.parse_args(argv)
    configure()   # the classifiers' progress and validation checks on stderr

    base = yaml.safe_load(Path("params.yaml").read_text())["topics"]
    data_cfg = DataConfig(**{**base["data"], "label_set": args.label_set,
                             "max_train_docs": args.max_train_docs, "max_val_docs": args.max_val_docs})
    params = {**dataclasses.asdict(DEFAULTS[args.kind]()), **base["train"][args.kind],
              **parse_overrides(args.overrides)}
    table, info = build_table(read_dir(args.raw), data_cfg)
    labels, top10 = info["labels"], info["top10"]
    train, val = table[table["split"] == "train"], table[table["split"] == "validation"]
    Y, Yv = label_matrix(train["labels"], labels), label_matrix(val["labels"], labels)

    folds = int(params.pop("threshold_folds", 0))
    clf = make_classifier(args.kind, labels, params)
    started = time.monotonic()
    fit_info = clf.fit(texts_of(train), Y, texts_of(val), Yv)
    if folds:   # as topics_train: thresholds from the training split's CV; validation unseen
        S_oof = out_of_fold_scores(lambda: make_classifier(args.kind, labels, params), texts_of(train), Y,
                                   folds, data_cfg.seed)
        cv = thresholds_record(labels, Y, S_oof, folds, data_cfg.seed)
        fit_info |= {f"cv_{k}": v for k, v in cv.items() if k.startswith(("oof_", "labels_not"))}
    train_seconds = round(time.monotonic() - started, 1)
    S = clf.scores(texts_of(val))
    P_tuned = (S >= np.array([cv["thresholds"][label] for label in labels]) if folds
               else M.crossfit_predictions(Yv, S, data_cfg.seed))
    figures = score_split(Yv, S, P_tuned, labels, top10, "validation", args.bootstrap, data_cfg.seed)
    scopes = ["validation"]
    if folds:   # CV over the training split: out-of-fold scores, thresholds tuned on the other folds
        P_oof = M.crossfit_predictions(Y, S_oof, data_cfg.seed, folds=folds)
        figures |= score_split(Y, S_oof, P_oof, labels, top10, "cv_train", args.bootstrap, data_cfg.seed)
        # labels with one training document have no positive in the other folds' fits: never
        # learnable out of fold (the registered model sees them), so also scored without them
        learnable = Y.sum(0) >= 2
        figures |= score_split(Y[:, learnable], S_oof[:, learnable], P_oof[:, learnable],
                               [x for x, keep in zip(labels, learnable) if keep], top10,
                               "cv_train_2plus", args.bootstrap, data_cfg.seed)
        scopes += ["cv_train", "cv_train_2plus"]
    report = {"kind": args.kind, "params": params, "label_set": args.label_set, "labels": len(labels),
              "train_docs": len(train), "validation_docs": len(val), "train_seconds": train_seconds,
              "peak_rss_mb": peak_rss_mb(), "fit": fit_info, "figures": figures}
    for split in scopes:
        for scope in ("", "top10/"):
            for name in ("", "_tuned"):
                f = lambda m, tail="": figures[f"{scope}{split}/{m}{name}{tail}"]  # noqa: E731
                print(f"{args.kind} {split} {scope or 'all/'} {'tuned' if name else '0.5  '}  "
                      f"micro {f('micro_f1'):.3f} ({f('micro_f1', '_ci_low'):.3f}-{f('micro_f1', '_ci_high'):.3f})  "
                      f"macro {f('macro_f1'):.3f} ({f('macro_f1', '_ci_low'):.3f}-{f('macro_f1', '_ci_high'):.3f})  "
                      f"P/R {f('micro_precision'):.3f}/{f('micro_recall'):.3f}  labels {f('labels_scored'):.0f}")
    print(f"train {train_seconds} s, peak RSS {report['peak_rss_mb']} MB, "
          f"fit {json.dumps({k: v for k, v in fit_info.items() if k != 'history'})}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    sys.exit(main() and 0)
