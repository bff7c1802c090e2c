"""Stage `edu_evaluate`: each setup's chosen model scored through `EduScorer.score_vectors` (the
path the registered model and `tagflow edu predict` use, over the cached embeddings) on its val
and test splits, per source, and cross-lingually on a whole source it never learned from.

Outputs: `metrics/edu.json` (`<setup>/<set>/<metric>`, CIs and baselines included), predictions
per page, confusion matrices as DVC plot tables (`artifacts/edu/plots/<setup>_<set>.csv`: one
row per page, actual vs predicted) and as images in the MLflow run."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..core.io import atomic_path, write_json, write_jsonl
from ..core.log import get_logger
from .data import int_score
from .embed import cache_folder, vectors_for
from .metrics import confusion, report
from .model import EduScorer

if TYPE_CHECKING:
    from ..config import Config

log = get_logger("edu_evaluate")


def evaluation_sets(table: pd.DataFrame, sources: list[str], cross_lingual: str | None) -> dict[str, pd.DataFrame]:
    """Named page sets: val, test (pooled over the setup's sources), val_<source> and
    test_<source> when it has several, and xling_<source> (every page of a source it did not
    learn from)."""
    mine = table[table["source"].isin(sources)]
    sets = {"val": mine[mine["split"] == "val"], "test": mine[mine["split"] == "test"]}
    if len(sources) > 1:
        for split in ("val", "test"):
            for source in sources:
                sets[f"{split}_{source}"] = mine[(mine["split"] == split) & (mine["source"] == source)]
    if cross_lingual:
        sets[f"xling_{cross_lingual}"] = table[table["source"] == cross_lingual]
    return {k: v for k, v in sets.items() if len(v)}


def confusion_figure(matrix: list[list[int]], title: str):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(np.asarray(matrix), cmap="Blues")
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            if n:
                ax.text(j, i, str(n), ha="center", va="center", fontsize=8)
    ax.set_xlabel("predicted int_score")
    ax.set_ylabel("annotator int_score")
    ax.set_xticks(range(6))
    ax.set_yticks(range(6))
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def run(cfg: "Config") -> dict:
    import mlflow

    from ..core import tracking
    from . import paths
    from .data import load_table

    c = cfg.edu
    table = load_table()
    metrics: dict = {}
    matrices: dict = {}
    figures = {}
    for name, setup in c.train.setups.items():
        scorer = EduScorer.load(paths.model_dir(name))
        folder = cache_folder(c.embed.encoders[setup["encoder"]], c.embed.bf16, runtime=c.embed.runtime)
        sets = evaluation_sets(table, setup["train"], c.evaluate.cross_lingual.get(name))
        predictions = []
        for set_name, rows in sets.items():
            scores, ints = scorer.score_vectors(vectors_for(folder, rows["id"].tolist()))
            gold = rows["score"].to_numpy()
            result = report(gold, scores, threshold=c.evaluate.threshold, n_boot=c.evaluate.n_boot,
                            seed=0, baseline_mean=scorer.card["train"]["mean_score"],
                            groups=rows["source"].to_numpy())
            metrics |= {f"{name}/{set_name}/{k}": round(v, 4) if isinstance(v, float) else v
                        for k, v in result.items()}
            matrix = confusion(int_score(gold), ints)
            matrices[f"{name}/{set_name}"] = matrix
            plot = pd.DataFrame({"actual": int_score(gold), "predicted": ints})
            with atomic_path(Path(paths.PLOTS_DIR) / f"{name}_{set_name}.csv") as tmp:
                plot.to_csv(tmp, index=False)
            figures[f"{name}_{set_name}"] = (matrix, f"{name} / {set_name} (n={len(rows)})")
            predictions += [{"id": pid, "source": src, "set": set_name, "gold": float(g),
                             "score": round(float(s), 4), "int_score": int(i)}
                            for pid, src, g, s, i in zip(rows["id"], rows["source"], gold, scores, ints)]
        write_jsonl(Path(paths.EVAL_DIR) / f"{name}_predictions.jsonl", predictions)
        log.info("%s (%s head): val spearman within sources %.3f, macro-F1 %.3f, binary F1 %.3f", name,
                 scorer.card["head"]["kind"], metrics[f"{name}/val/spearman_within"],
                 metrics[f"{name}/val/macro_f1"], metrics[f"{name}/val/binary_f1"])
    write_json(Path(paths.EVAL_DIR) / "confusion.json", matrices)  # rows: annotator 0-5, columns: predicted
    write_json(paths.METRICS, metrics)
    with tracking.evaluation_run(c.tracking.experiment, tracking.read_run_id(paths.RUN_FILE), cfg.profile,
                                 tracking.flatten("evaluate", c.evaluate), paths.EVAL_RUN_FILE):
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(paths.EVAL_DIR, "evaluation")
        for key, (matrix, title) in figures.items():
            fig = confusion_figure(matrix, title)
            mlflow.log_figure(fig, f"confusion/{key}.png")
            import matplotlib.pyplot as plt
            plt.close(fig)
    return metrics
