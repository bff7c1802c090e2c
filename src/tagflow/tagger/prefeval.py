"""Before and after preference tuning, on the same splits: the base model (no adapter), the SFT
model and SFT+IPO. Each answers every document by free greedy generation with the SFT prompt;
measured are the format-valid rate (`pairs.answer_keywords`), the mean tag-to-text cosine of the
valid answers with its standard error and a histogram, and the tagger metrics of the llm backend
over each model (the same Tagger that evaluation and the service run). The SFT+IPO model's tagger
metrics are also written in the shape of metrics/tagger.json, for its registration gate.

In tag mode (`tagger.pairs.mode: tags`) each model also answers the held-out tag-mode texts with the
tag instruction (set `tags`: validity by tagmode.check_tags, cosine to the tags joined, and why
answers failed); the histogram is then of that set, the recipe's own measurement."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..core.log import get_logger
from .pairs import answer_parser, tag_text_cosines
from .tagmode import problem_counts, tag_rows

if TYPE_CHECKING:
    from ..config import Config

MODELS = ("base", "sft", "ipo")
PLOTS_DIR = "artifacts/pref_plots"    # DVC plot data: one histogram table per model
TAGGER_KEYS = ("f1_doc", "precision_doc", "recall_doc", "f1_micro", "valid_json_rate", "out_of_thesaurus_rate")
log = get_logger("prefeval")


def base_model_dir(sft_dir: str | Path, out: Path) -> Path:
    """A model dir for the base model alone: the SFT dir's base model and prompt, no adapters."""
    from .sft import ADAPTER_META, adapter_meta

    meta = adapter_meta(sft_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / ADAPTER_META).write_text(json.dumps({"base_model": meta["base_model"], "prompt": meta["prompt"],
                                                "adapters": []}, indent=2) + "\n")
    return out


def free_answers(model_dir: str | Path, texts: list[str], max_new_tokens: int, batch_size: int,
                 prompt: str | None = None) -> list[str]:
    """Greedy free generation with `prompt`, by default the one recorded in the model dir."""
    from ..core.generation import generate_chat
    from .sft import load_adapter

    tok, model, meta = load_adapter(model_dir)
    conversations = [[{"role": "user", "content": (prompt or meta["prompt"]).format(text=t)}] for t in texts]
    return generate_chat(tok, model, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size)


def answer_quality(texts: list[str], answers: list[str], encoder, parse: Callable[[str], list[str] | None],
                   window_chars: int) -> tuple[dict, list[float]]:
    """(summary, cosines of the valid answers): valid rate with its Wilson 95% interval, mean
    cosine, its standard error and 95% interval (normal approximation). `parse` is the mode's
    validity (pairs.answer_parser)."""
    keywords = [parse(a) for a in answers]
    valid = [i for i, k in enumerate(keywords) if k is not None]
    cosines = tag_text_cosines(encoder, [texts[i] for i in valid], [keywords[i] for i in valid], window_chars)
    n = len(cosines)
    mean = float(np.mean(cosines)) if n else None
    se = float(np.std(cosines, ddof=1) / math.sqrt(n)) if n > 1 else None
    summary = {"documents": len(answers), "valid_rate": round(len(valid) / len(answers), 4) if answers else 0.0,
               "valid_ci95": wilson(len(valid), len(answers)),
               "cosine_n": n, "cosine_mean": None if mean is None else round(mean, 4),
               "cosine_se": None if se is None else round(se, 4),
               "cosine_ci95": None if se is None else [round(mean - 1.96 * se, 4), round(mean + 1.96 * se, 4)]}
    return summary, cosines


def wilson(successes: int, n: int, z: float = 1.96) -> list[float] | None:
    """Wilson score interval of a rate (sound at 0% and 100%, where the normal one collapses)."""
    if n == 0:
        return None
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def histograms(cosines: dict[str, list[float]], bins: int) -> dict[str, list[dict]]:
    """Per model, rows {bin (centre), count} over common edges from min(0, lowest) to 1."""
    values = [c for cs in cosines.values() for c in cs]
    low = min([0.0] + values)
    edges = np.linspace(low, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    return {name: [{"bin": round(float(c), 4), "count": int(n)}
                   for c, n in zip(centres, np.histogram(np.clip(cs, low, 1.0), bins=edges)[0])]
            for name, cs in cosines.items()}


def _plot_png(hists: dict[str, list[dict]], path: Path) -> bool:
    """The histograms as one image, when matplotlib is installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, rows in hists.items():
        ax.step([r["bin"] for r in rows], [r["count"] for r in rows], where="mid", label=name)
    ax.set_xlabel("cosine(text, keywords joined)")
    ax.set_ylabel("answers")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def compare(cfg: "Config", dirs: dict[str, str | Path], sets: dict[str, list[dict]], thesaurus, encoder):
    """(report, cosines per model on the first set (the tags set in tag mode), test-split
    predictions per model)."""
    from .evaluate import evaluate
    from .pipeline import Tagger

    c = cfg.tagger
    parse = answer_parser(c.pairs)   # keyword sets are judged as keywords, the tags set as tags
    keyword_parse = answer_parser(replace(c.pairs, mode="keywords"))
    tag_rows_ = tag_rows(c.pairs, "eval") if c.pairs.mode == "tags" else []
    report: dict[str, dict] = {}
    first = next(iter(sets))
    cosines: dict[str, list[float]] = {}
    predictions: dict[str, list[dict]] = {}
    for name, model_dir in dirs.items():
        entry: dict = {}
        for set_name, rows in sets.items():
            texts = [r["text"] for r in rows]
            answers = free_answers(model_dir, texts, c.pref_evaluate.max_new_tokens, c.pref_evaluate.batch_size)
            quality, cos = answer_quality(texts, answers, encoder, keyword_parse, c.pairs.window_chars)
            entry[set_name] = quality
            if set_name == first and not tag_rows_:   # in tag mode the histogram is of the tags set
                cosines[name] = cos
            tagger = Tagger.build(c.infer, thesaurus, str(model_dir))
            metrics, preds = evaluate(tagger, rows)
            entry[set_name] |= {"tagger": metrics}
            if set_name == first:
                predictions[name] = preds
            del tagger
        if tag_rows_:
            texts = [r["text"] for r in tag_rows_]
            answers = free_answers(model_dir, texts, c.pref_evaluate.max_new_tokens, c.pref_evaluate.batch_size,
                                   prompt=c.pairs.tags.prompt)
            entry["tags"], cosines[name] = answer_quality(texts, answers, encoder, parse, c.pairs.window_chars)
            entry["tags"]["problems"] = problem_counts(answers, c.pairs.tags)
        report[name] = entry
        log.info("%s: %s", name, {s: {k: v for k, v in e.items() if k != "tagger"} for s, e in entry.items()})
    return report, cosines, predictions


def table(report: dict) -> dict:
    """The before/after figures side by side: {set/metric: {model: value}}."""
    out: dict[str, dict] = {}
    for name, entry in report.items():
        for set_name, q in entry.items():
            for key in ("valid_rate", "cosine_mean", "cosine_se"):
                out.setdefault(f"{set_name}/{key}", {})[name] = q[key]
            for key in TAGGER_KEYS if "tagger" in q else ():   # the tags set has no thesaurus metrics
                out.setdefault(f"{set_name}/{key}", {})[name] = q["tagger"].get(key)
    return out


# ---------------------------------------------------------------- the dvc.yaml stage

def _skip(reason: str) -> dict:
    from ..core.io import atomic_path, write_json
    from . import paths

    summary = {"skipped": reason}
    for target in (paths.PREF_DIR, PLOTS_DIR):
        with atomic_path(target, is_dir=True) as out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "skipped.json").write_text(json.dumps(summary) + "\n")
    write_json(paths.METRICS_PREFERENCE, summary)
    write_json(paths.METRICS_TAGGER_IPO, summary)
    return summary


def run(cfg: "Config") -> dict:
    """Stage `tagger_pref_evaluate`: base vs SFT vs SFT+IPO on the test split (and the dev set
    when configured); figures into the IPO run."""
    import mlflow

    from ..core import tracking
    from ..core.encoders import load_encoder
    from ..core.io import atomic_path, write_json, write_jsonl
    from ..thesaurus import Thesaurus
    from . import paths
    from .evaluate import load_dev_set, load_split
    from .sft import no_adapter

    c = cfg.tagger
    if not paths.uses_adapter(c.infer.backend):
        return _skip(no_adapter(c.infer.backend))
    if (Path(paths.IPO_DIR) / "skipped.json").exists():
        return _skip(json.loads((Path(paths.IPO_DIR) / "skipped.json").read_text())["skipped"])
    sets = {c.evaluate.split: load_split(paths.SFT_DIR, c.evaluate.split)}
    if c.evaluate.dev_set:
        sets["dev"] = load_dev_set(c.evaluate.dev_set)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {"base": base_model_dir(paths.ADAPTER_DIR, Path(tmp) / "base"),
                "sft": paths.ADAPTER_DIR, "ipo": paths.IPO_DIR}
        report, cosines, predictions = compare(cfg, dirs, sets, Thesaurus.load(paths.CONCEPTS),
                                               load_encoder(c.pairs.encoder))
    hists = histograms(cosines, c.pref_evaluate.bins)
    summary = {"models": report, "table": table(report),
               "cosine_set": "tags" if c.pairs.mode == "tags" else c.evaluate.split}
    ipo_tagger = {f"{'' if s == c.evaluate.split else s + '/'}{k}": v
                  for s, q in report["ipo"].items() for k, v in q.get("tagger", {}).items()}
    with atomic_path(PLOTS_DIR, is_dir=True) as out:
        out.mkdir(parents=True, exist_ok=True)
        for name, rows in hists.items():
            (out / f"{name}.csv").write_text("bin,count\n" + "".join(f"{r['bin']},{r['count']}\n" for r in rows))
    with atomic_path(paths.PREF_DIR, is_dir=True) as out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "cosines.json").write_text(json.dumps(cosines) + "\n")
        png = _plot_png(hists, out / "cosine_hist.png")
    write_jsonl(paths.IPO_PREDICTIONS, predictions["ipo"])
    write_json(paths.METRICS_PREFERENCE, summary)
    write_json(paths.METRICS_TAGGER_IPO, ipo_tagger)
    with tracking.resume_run(c.tracking.experiment, tracking.read_run_id(paths.IPO_RUN_FILE), cfg.profile):
        mlflow.log_metrics({f"pref/{key.replace('/', '.')}/{model}": v for key, row in summary["table"].items()
                            for model, v in row.items() if isinstance(v, (int, float))})
        mlflow.log_metrics(ipo_tagger)   # what the gate reads, as the SFT run has its own
        mlflow.log_artifact(paths.METRICS_PREFERENCE, "preference")
        if png:
            mlflow.log_artifact(str(Path(paths.PREF_DIR) / "cosine_hist.png"), "preference")
    log.info("before/after: %s", summary["table"])
    return summary
