"""Compare tagger backends on the same documents: fit each on the synthetic training split (the
ensemble's weights on the validation split), then score it on the hand-indexed development set,
the synthetic test split and, to show nothing is tied to one vocabulary or language, the Finnish
YSO archaeology corpus (fitted on its 6,404 titles, scored on its 28 full texts).

    python benchmarks/compare_backends.py --project . --backends lexical embedding ensemble
    python benchmarks/compare_backends.py --project /path/to/a/cpu/run --out reports/compare.json

Reads the project's artifacts (concept table, synthetic splits) and params.yaml's tagger.infer;
writes nothing there. Prints one Markdown table (backend x set -> F1 with its 95% CI, F1@5,
NDCG@5, hierarchy F1, docs/s) and a JSON file with every figure.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tagflow.config import load_config  # noqa: E402
from tagflow.core.io import read_jsonl  # noqa: E402
from tagflow.tagger.backends import fit_backend, make_backend  # noqa: E402
from tagflow.tagger.evaluate import evaluate, load_dev_set  # noqa: E402
from tagflow.tagger.paths import ADAPTER_DIR, model_dir  # noqa: E402
from tagflow.tagger.pipeline import Tagger  # noqa: E402
from tagflow.thesaurus import Thesaurus, parse_skos  # noqa: E402

SHOWN = ["f1_doc", "f1_doc_ci_low", "f1_doc_ci_high", "f1_at_5", "ndcg_at_5", "hf1_doc",
         "precision_doc", "recall_doc", "f1_doc_not_verbatim", "docs_per_s"]


def load_project(project: Path, params: Path | None = None):
    """(config, thesaurus, synthetic train split, validation split) of a project that ran dvc repro
    (the splits are empty where synthesis has not run: backends that learn nothing still compare)."""
    cfg = load_config(params or project / "params.yaml")
    th = Thesaurus.load(project / "artifacts/thesaurus/concepts.parquet")
    sft = project / "artifacts/sft"
    if not (sft / "train.jsonl").exists():
        print(f"[compare] no synthetic splits in {sft}: fitting on none, no synthetic test set", file=sys.stderr)
        return cfg, th, [], []
    return cfg, th, read_jsonl(sft / "train.jsonl"), read_jsonl(sft / "val.jsonl")


def trained_model_dir(project: Path, backend: str, tmp: str) -> Path:
    """The llm (and its variants) use the project's SFT adapter; other backends are fitted into tmp."""
    return project / ADAPTER_DIR if model_dir(backend) == ADAPTER_DIR else Path(tmp)


def run_backend(infer, thesaurus, train, val, sets: dict[str, list[dict]], project: Path = ROOT) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.monotonic()
        fit_summary = fit_backend(infer, thesaurus, train, val, Path(tmp))
        fit_seconds = time.monotonic() - start
        tagger = Tagger(make_backend(infer, thesaurus, trained_model_dir(project, infer.backend, tmp)),
                        thesaurus, infer)
        out = {"fit_seconds": round(fit_seconds, 1), "fit": fit_summary}
        for name, rows in sets.items():
            start = time.monotonic()
            metrics, _ = evaluate(tagger, rows)
            metrics["docs_per_s"] = len(rows) / (time.monotonic() - start)
            out[name] = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
    return out


def yso(mirror: Path) -> tuple[Thesaurus, list[dict], list[dict]]:
    """The YSO subset, its titles (training) and its full texts with gold subjects (test)."""
    folder = mirror / "yso-archaeology"
    th = Thesaurus(parse_skos(folder / "yso-archaeology.ttl", ["fi", "sv", "en"]))
    titles = [{"text": r["text"], "uris": [s["uri"] for s in r["subjects"]]}
              for r in read_jsonl(folder / "documents.jsonl")]
    docs = []
    for txt in sorted((folder / "fulltext").glob("*.txt")):
        uris = [line.split("\t")[0].strip("<>") for line in txt.with_suffix(".tsv").read_text().splitlines()
                if line.strip()]
        docs.append({"id": txt.stem, "lang": "fi", "text": txt.read_text(), "uris": uris,
                     "labels": [th.label.get(u, "") for u in uris]})
    return th, titles, docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", default=".", help="project root with artifacts/ (a run of dvc repro)")
    ap.add_argument("--params", help="params.yaml to read tagger.infer from (default: the project's)")
    ap.add_argument("--backends", nargs="+", default=["lexical", "embedding", "ensemble"],
                    help="backend names or variants (<backend>@<name>) configured in tagger.infer.backends")
    ap.add_argument("--mirror", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-yso", action="store_true")
    ap.add_argument("--out", help="write all figures here (JSON)")
    args = ap.parse_args()

    project = Path(args.project)
    cfg, th, train, val = load_project(project, args.params and Path(args.params))
    sets = {"dev": load_dev_set(project / (cfg.tagger.evaluate.dev_set or "devsets/tagger"))}
    if train:
        sets["test"] = read_jsonl(project / "artifacts/sft/test.jsonl")
    yso_data = None if args.no_yso else yso(Path(args.mirror))
    results = {}
    for backend in args.backends:
        infer = copy.deepcopy(cfg.tagger.infer)
        infer.backend = backend
        print(f"[compare] {backend}: fitting on {len(train)} synthetic documents", file=sys.stderr)
        results[backend] = run_backend(infer, th, train, val, sets, project)
        if yso_data and not backend.startswith(("llm", "route")):   # route: its e5 member indexes en/fr/es
            yth, titles, docs = yso_data
            yinfer = copy.deepcopy(infer)
            print(f"[compare] {backend}: YSO ({len(titles)} titles -> {len(docs)} texts)", file=sys.stderr)
            results[backend] |= {k: v for k, v in run_backend(yinfer, yth, titles, titles[:300],
                                                              {"yso": docs}).items() if k == "yso"}
    header = "| backend | set | " + " | ".join(SHOWN) + " |"
    print(header + "\n|" + "---|" * (len(SHOWN) + 2))
    for backend, res in results.items():
        for name in ("dev", "test", "yso"):
            if name in res:
                print(f"| {backend} | {name} | " + " | ".join(str(res[name].get(k, "")) for k in SHOWN) + " |")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
