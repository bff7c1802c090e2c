"""Score fusion of other backends: a weighted mean of each member's scores per concept, with the
weights (and the score threshold) chosen on the synthetic validation split by doc-averaged F1.

Members are fitted into sub-directories of the ensemble's own model directory, so the registered
model carries all of them. The llm member is not offered here: its adapter is trained by its own
stage and generation is slow; rerankers will combine it with cheap candidates instead."""
from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path

from ...core.errors import ConfigError, ModelError
from .base import ChunkSuggestions, Suggestion, TaggerBackend

STATE = "ensemble.json"


def _members(params: dict) -> list[str]:
    from . import base_name

    names = [m.strip() for m in params["members"].split(",") if m.strip()]
    kinds = {base_name(n) for n in names}
    if len(names) < 2 or kinds & {"ensemble", "llm", "route"} or len(set(names)) != len(names):
        raise ConfigError(f"ensemble members must be two or more distinct backends other than llm, "
                          f"ensemble and route, got {params['members']!r}")
    return names


def fuse(per_member: list[list[ChunkSuggestions]], weights: list[float]) -> list[dict[str, float]]:
    """Per chunk: concept -> weighted mean score over members (a member's silence counts 0)."""
    total = sum(weights) or 1.0
    fused = []
    for chunk_results in zip(*per_member):
        scores: dict[str, float] = defaultdict(float)
        for weight, result in zip(weights, chunk_results):
            for s in result.suggestions:
                scores[s.uri] += weight * s.score / total
        fused.append(dict(scores))
    return fused


class EnsembleBackend(TaggerBackend):
    name = "ensemble"
    needs_fit = True
    composite = True  # built with its members' parameters (see backends.make_backend)
    DEFAULT_PARAMETERS = {
        "members": "lexical,embedding",  # comma-separated backend names
        "limit": 20,
        "top_n": 10,          # documents' concepts kept when weights are chosen (as the tagger will)
        "weight_step": 0.1,   # grid of weights searched on the validation split
    }

    def __init__(self, params: dict, thesaurus, model_dir=None, member_params: dict | None = None):
        super().__init__(params, thesaurus, model_dir)
        if self.model_dir is None or not (self.model_dir / STATE).exists():
            raise ModelError(f"ensemble: no fitted state in {self.model_dir} (run `tagflow tagger fit`)")
        from . import get_backend

        state = json.loads((self.model_dir / STATE).read_text())
        self.weights, self.min_score = state["weights"], state["min_score"]
        self.members = [get_backend(name)(state["member_params"][name], thesaurus, self.model_dir / name)
                        for name in state["members"]]

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        per_member = [m.suggest(chunks) for m in self.members]
        out = []
        for scores in fuse(per_member, self.weights):
            ranked = sorted(scores.items(), key=lambda kv: -kv[1])
            out.append(ChunkSuggestions([Suggestion(u, s) for u, s in ranked if s >= self.min_score]
                                        [:self.params["limit"]]))
        return out

    def training_ids(self) -> frozenset[str]:
        return frozenset().union(*(m.training_ids() for m in self.members))

    def describe(self) -> dict:
        return {"members": [m.name for m in self.members], "weights": self.weights,
                "min_score": self.min_score}

    @classmethod
    def fit(cls, params: dict, thesaurus, documents: list[dict], out_dir: Path,
            member_params: dict | None = None, validation: list[dict] | None = None) -> dict:
        from ..metrics import tagging_scores
        from . import fit_members, get_backend

        params = cls.resolve_params(params, "ensemble")
        names = _members(params)
        member_params, summaries = fit_members(names, member_params, thesaurus, documents, out_dir)
        validation = validation or []
        members = [get_backend(n)(member_params[n], thesaurus, Path(out_dir) / n) for n in names]
        texts = [d["text"] for d in validation]
        per_member = [m.suggest(texts) for m in members] if texts else []
        step = params["weight_step"]
        grid = [round(i * step, 6) for i in range(int(round(1 / step)) + 1)]
        best = (-1.0, [1.0] * len(names), 0.0)
        for weights in itertools.product(grid, repeat=len(names)):
            if abs(sum(weights) - 1.0) > 1e-6 or not texts:
                continue
            fused = fuse(per_member, list(weights))
            for threshold in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4):
                preds = [[u for u, s in sorted(f.items(), key=lambda kv: -kv[1]) if s >= threshold]
                         [:params["top_n"]] for f in fused]
                f1 = tagging_scores([d["uris"] for d in validation], preds)["f1_doc"]
                if f1 > best[0]:
                    best = (f1, list(weights), threshold)
        f1, weights, threshold = best
        state = {"members": names, "member_params": member_params, "weights": weights,
                 "min_score": threshold, "validation_f1_doc": round(max(f1, 0.0), 4),
                 "validation_documents": len(validation)}
        (Path(out_dir) / STATE).write_text(json.dumps(state, indent=2))
        return {"weights": dict(zip(names, weights)), "min_score": threshold,
                "validation_f1_doc": state["validation_f1_doc"], "members": summaries}
