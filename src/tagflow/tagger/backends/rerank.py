"""Learned reranking of retrieval candidates (Annif's MLLM idea, over several retrievers).

Candidates for a chunk: each member retriever's top `candidates` concepts, plus every concept
whose label occurs in the chunk (the lexical backend's stemmed label index). Features per
candidate: for each member its best window cosine, the mean of its two best windows, the cosine
of the chunk's mean vector, the share of windows ranking it in their top 20 and its log rank,
plus the best cosines relative to the chunk's best candidate and standardised within the chunk
(so a scorer learns "stands out here", not an encoder's absolute scale); label occurrences
(count, first position, preferred label); depth and narrower count; and support from the chunk's
strong candidates that are its ancestors, descendants, related concepts or share its
micro-thesaurus. With `neighbours`, the scorer's training documents are kept in the model as a
memory (each member's mean window vector of each document, and its concepts) and add two kinds of
feature: a candidate's vote among the chunk's nearest documents (per member, each neighbour weighted
by its cosine: the kNN idea of Annif's tfidf backend) and its prior (the log number of documents
indexed with it); a training document is featurised without itself. A scorer turns them into a
probability: a logistic regression (standardised features, balanced classes) or gradient-boosted
trees (`scorer: trees`, better from about a thousand training documents); either is stored as
plain numbers in JSON, so the scorer is portable and readable.

Which documents teach the scorer matters more than the features. Trained on the synthetic
split it learns that gold concepts are named in the text (true of the teacher's documents, not of
real ones) and reranks worse than the retrievers alone; trained on a few dozen hand-indexed
documents it lifts them (README, "Backends compared"). `train_set` names such a set: a folder of
`*.jsonl` documents with `text` and gold `uris` (a library's own indexed records). The fit
reports the scorer's out-of-fold F1 on its training set, and the evaluation refuses a dev set the
scorer was trained on (its F1 would be inflated), and the fit refuses members fine-tuned on the
scorer's documents (their cosines on those documents would be inflated, and the scorer would learn
to trust them too much).
"""
from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from ...core.errors import ConfigError, DataError, ModelError
from ..text import guess_language, with_title
from .base import ChunkSuggestions, Suggestion, TaggerBackend, load_train_set

STATE = "rerank.json"
SCORER = "scorer.json"
RECORDS = "records.npz"   # the scorer's training documents as a memory (with `neighbours`)
PER_MEMBER = ["max", "mean2", "whole", "top_share", "log_rank", "gap", "z"]
SHARED = ["label_count", "label_first", "label_pref", "depth", "log_narrower",
          "support_ancestors", "support_descendants", "support_related", "support_micro"]
TOP_WINDOW = 20   # a window "ranks" a concept when it is among the window's 20 best
SUPPORTERS = 20   # the chunk's strongest candidates, whose neighbours get support


def _members(params: dict) -> list[str]:
    from . import base_name

    names = [m.strip() for m in params["members"].split(",") if m.strip()]
    if not names or len(set(names)) != len(names) or any(base_name(n) != "embedding" for n in names):
        raise ConfigError(f"backend rerank.members: one or more distinct embedding backends or variants "
                          f"(e.g. 'embedding,embedding@multilingual'), got {params['members']!r}")
    return names


def feature_names(members: list[str], memory: bool = False) -> list[str]:
    memory_features = [f"{m}.knn" for m in members] + ["prior"] if memory else []
    return [f"{m}.{f}" for m in members for f in PER_MEMBER] + SHARED + memory_features


class RecordMemory:
    """Indexed documents, as vectors per member and concept sets: what similar documents were
    indexed with (`knn`, one column per member) and how often a concept was used at all (`prior`)."""

    def __init__(self, vectors: dict[str, np.ndarray], concepts: list[list[str]], neighbours: int,
                 candidates: int = 0):
        self.vectors, self.neighbours, self.candidates = vectors, neighbours, candidates
        self.concepts = [frozenset(c) for c in concepts]
        self.count = Counter(u for c in self.concepts for u in c)

    def _nearest(self, name: str, vector: np.ndarray, exclude: int | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        sims = self.vectors[name] @ vector
        near = np.argsort(-sims, kind="stable")
        if exclude is not None:   # the document itself is never its own neighbour
            near = near[near != exclude]
        near = near[:k]
        return near, sims[near]

    def concepts_near(self, chunk_vectors: dict[str, np.ndarray], exclude: int | None) -> set[str]:
        """The concepts of each member's `candidates` nearest documents (new candidates: the
        retrievers miss about a third of the gold concepts, which similar records often carry)."""
        found: set[str] = set()
        for name, vector in chunk_vectors.items():
            for j in self._nearest(name, vector, exclude, self.candidates)[0]:
                found |= self.concepts[j]
        return found

    def features(self, uris: list[str], chunk_vectors: dict[str, np.ndarray], exclude: int | None) -> np.ndarray:
        """(candidates, members + 1): kNN votes per member, then the prior; `exclude`: the
        document being featurised, when it is one of the memory's own (leave-one-out)."""
        own = self.concepts[exclude] if exclude is not None else frozenset()
        columns = []
        for name, vector in chunk_vectors.items():
            votes: dict[str, float] = defaultdict(float)
            for j, sim in zip(*self._nearest(name, vector, exclude, self.neighbours)):
                for u in self.concepts[j]:
                    votes[u] += max(float(sim), 0.0)
            columns.append([votes.get(u, 0.0) for u in uris])
        columns.append([math.log1p(self.count[u] - (u in own)) for u in uris])
        return np.array(columns, dtype=np.float64).T.reshape(len(uris), len(columns))

    def save(self, path: Path) -> None:
        # concepts as tab-joined URIs in a unicode array: loading needs no pickle
        np.savez_compressed(path, concepts=np.array(["\t".join(sorted(c)) for c in self.concepts], dtype=str),
                            **{f"vectors:{n}": v.astype(np.float16) for n, v in self.vectors.items()})

    @classmethod
    def load(cls, path: Path, neighbours: int, candidates: int = 0) -> "RecordMemory":
        with np.load(path) as data:
            vectors = {k.split(":", 1)[1]: data[k].astype(np.float32) for k in data.files if k.startswith("vectors:")}
            concepts = [c.split("\t") if c else [] for c in data["concepts"].tolist()]
        return cls(vectors, concepts, neighbours, candidates)


class Candidates:
    """Member retrievers + label index: chunks -> (candidate URIs, feature matrix) per chunk."""

    def __init__(self, members: dict, thesaurus, languages: list[str], per_member: int,
                 memory: RecordMemory | None = None):
        from .lexical import LabelIndex

        self.members, self.th, self.per_member, self.memory = members, thesaurus, per_member, memory
        self.labels = LabelIndex(thesaurus, languages)
        self.column = {name: {str(u): i for i, u in enumerate(m.uris)} for name, m in members.items()}

    def __call__(self, chunks: list[str]) -> list[tuple[list[str], np.ndarray]]:
        """(candidate URIs, features) per chunk."""
        return self.featurise(chunks, self.views(chunks))

    def views(self, chunks: list[str]) -> dict[str, tuple]:
        """Each member's window cosines of the chunks and their mean window vectors (the vectors
        are what the memory keeps of a document)."""
        return {name: m.window_scores(chunks) for name, m in self.members.items()}

    def featurise(self, chunks: list[str], views: dict[str, tuple], exclude: list[int | None] | None = None
                  ) -> list[tuple[list[str], np.ndarray]]:
        """(candidate URIs, features) per chunk; `exclude`: per chunk, the memory's document it is
        (the memory's own documents are featurised without themselves)."""
        out = []
        for i, chunk in enumerate(chunks):
            vectors = {n: v[2][i] for n, v in views.items()}
            skip = exclude[i] if exclude else None
            extra = self.memory.concepts_near(vectors, skip) if self.memory is not None else set()
            uris, X = self._chunk(chunk, {n: (v[0][i], v[1][i]) for n, v in views.items()}, extra)
            if self.memory is not None:
                X = np.hstack([X, self.memory.features(uris, vectors, skip)])
            out.append((uris, X))
        return out

    def _chunk(self, chunk: str, views: dict, extra: set[str]) -> tuple[list[str], np.ndarray]:
        per_member, pool = {}, set(extra)
        for name, (windows, whole) in views.items():
            best = windows.max(0)
            top = np.argsort(-best)[:self.per_member]
            uris = self.members[name].uris
            pool.update(str(uris[i]) for i in top)
            kth = np.sort(windows, axis=1)[:, -min(TOP_WINDOW, windows.shape[1])][:, None]
            second = np.sort(windows, axis=0)[-2:].mean(0) if len(windows) > 1 else best
            per_member[name] = dict(max=best, mean2=second, whole=whole, top_share=(windows >= kth).mean(0),
                                    rank={str(uris[i]): r for r, i in enumerate(top)},
                                    gap_top=best.max(), mu=best[top].mean(), sd=best[top].std() + 1e-6)
        found, n_words = self.labels.match(chunk, guess_language(chunk, self.labels.languages))
        pool.update(found)
        uris = sorted(u for u in pool if u in self.th)
        rows = []
        for u in uris:
            row = []
            for name, f in per_member.items():
                i = self.column[name].get(u)
                best = float(f["max"][i]) if i is not None else 0.0
                row += [best, float(f["mean2"][i]) if i is not None else 0.0,
                        float(f["whole"][i]) if i is not None else 0.0,
                        float(f["top_share"][i]) if i is not None else 0.0,
                        math.log1p(f["rank"].get(u, self.per_member)),
                        float(f["gap_top"]) - best, (best - float(f["mu"])) / float(f["sd"])]
            occ = found.get(u)
            row += [math.log1p(len(occ.positions)) if occ else 0.0,
                    occ.positions[0] / max(n_words, 1) if occ else 1.0,
                    float(occ.pref) if occ else 0.0,
                    float(len(self.th.ancestors(u))), math.log1p(len(self.th.narrower.get(u, ())))]
            rows.append(row)
        X = np.array(rows, dtype=np.float64).reshape(len(uris), -1)
        return uris, self._with_support(uris, X, len(per_member))

    def _with_support(self, uris: list[str], X: np.ndarray, n_members: int) -> np.ndarray:
        """Append how strongly the chunk's best candidates back each candidate through the graph."""
        if not uris:
            return np.zeros((0, n_members * len(PER_MEMBER) + len(SHARED)))
        strength = X[:, [k * len(PER_MEMBER) for k in range(n_members)]].sum(1)  # summed best cosines
        strong = [uris[i] for i in np.argsort(-strength)[:SUPPORTERS]]
        weight = dict(zip(uris, strength))
        support = []
        for u in uris:
            ancestors, related, micro = self.th.ancestors(u), set(self.th.related.get(u, ())), self.th.micro.get(u)
            support.append([sum(weight[v] for v in strong if v in ancestors),
                            sum(weight[v] for v in strong if u in self.th.ancestors(v)),
                            sum(weight[v] for v in strong if v in related),
                            sum(weight[v] for v in strong if v != u and self.th.micro.get(v) == micro) / SUPPORTERS])
        return np.hstack([X, np.array(support)])


class LinearScorer:
    """A standardised logistic regression, kept as plain numbers."""
    kind = "logistic"

    def __init__(self, state: dict):
        self.state = state
        self.mean, self.scale = np.array(state["mean"]), np.array(state["scale"])
        self.coef, self.intercept = np.array(state["coef"]), float(state["intercept"])

    @classmethod
    def train(cls, X: np.ndarray, y: np.ndarray, params: dict, features: list[str]) -> "LinearScorer":
        from sklearn.linear_model import LogisticRegression

        mean, scale = X.mean(0), X.std(0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=params["C"], class_weight="balanced", max_iter=5000).fit((X - mean) / scale, y)
        return cls({"kind": cls.kind, "features": features, "mean": mean.tolist(), "scale": scale.tolist(),
                    "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])})

    def weights(self) -> list[float]:
        return self.coef.tolist()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(((X - self.mean) / self.scale) @ self.coef + self.intercept)))


class TreeScorer:
    """Gradient-boosted trees (scikit-learn's histogram boosting), kept as plain numbers: each tree
    as arrays of split feature, threshold, children and leaf value, so the scorer stays a JSON file
    that any numpy can evaluate. Trees learn what a linear scorer cannot: that a kNN vote matters
    when the retrievers are unsure, that a label match counts for little in a long chunk; with
    about a thousand training documents they beat the logistic regression (README, "Records as memory")."""
    kind = "trees"

    def __init__(self, state: dict):
        self.state = state
        self.baseline = float(state["baseline"])
        trees = state["trees"]
        # all trees as (tree, node) arrays, padded with leaves worth 0, so that scoring walks every
        # tree at once: one numpy step per tree level instead of one per tree and level
        width = max(len(t["leaf"]) for t in trees)

        def stacked(key: str, fill, dtype):
            out = np.full((len(trees), width), fill, dtype=dtype)
            for i, t in enumerate(trees):
                out[i, :len(t[key])] = t[key]
            return out

        self.feature, self.threshold = stacked("feature", 0, np.int64), stacked("threshold", 0.0, np.float64)
        self.left, self.right = stacked("left", 0, np.int64), stacked("right", 0, np.int64)
        self.leaf, self.value = stacked("leaf", True, bool), stacked("value", 0.0, np.float64)
        self.gain = stacked("gain", 0.0, np.float64)

    @classmethod
    def train(cls, X: np.ndarray, y: np.ndarray, params: dict, features: list[str]) -> "TreeScorer":
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(max_iter=params["trees"], max_leaf_nodes=params["leaves"],
                                               learning_rate=params["learning_rate"], l2_regularization=1.0,
                                               early_stopping=False, random_state=13).fit(X, y)
        trees = []
        for (predictor,) in model._predictors:   # binary: one tree per iteration
            nodes = predictor.nodes
            trees.append({"feature": nodes["feature_idx"].tolist(), "threshold": nodes["num_threshold"].tolist(),
                          "left": nodes["left"].tolist(), "right": nodes["right"].tolist(),
                          "leaf": nodes["is_leaf"].astype(bool).tolist(), "value": nodes["value"].tolist(),
                          "gain": nodes["gain"].tolist()})
        scorer = cls({"kind": cls.kind, "features": features,
                      "baseline": float(np.ravel(model._baseline_prediction)[0]), "trees": trees})
        # the export reads scikit-learn's private tree layout: refuse to save a scorer that does not
        # reproduce the fitted model (a scikit-learn release that changed that layout)
        sample = X[:: max(1, len(X) // 2000)]
        if not np.allclose(scorer(sample), model.predict_proba(sample)[:, 1], atol=1e-6):
            raise ModelError("rerank: the exported trees do not reproduce scikit-learn's model; "
                             "use scorer: logistic with this scikit-learn version")
        return scorer

    def weights(self) -> list[float]:
        """Share of the trees' split gain per feature (what the trees rely on)."""
        gain = np.bincount(self.feature[~self.leaf], self.gain[~self.leaf], minlength=len(self.state["features"]))
        return (gain / max(gain.sum(), 1e-12)).tolist()

    def __call__(self, X: np.ndarray) -> np.ndarray:
        raw = np.concatenate([self._raw(X[i:i + 2048]) for i in range(0, len(X), 2048)]) if len(X) else np.zeros(0)
        return 1.0 / (1.0 + np.exp(-raw))

    def _raw(self, X: np.ndarray) -> np.ndarray:
        trees = np.arange(len(self.leaf))[None, :]
        rows = np.arange(len(X))[:, None]
        node = np.zeros((len(X), len(self.leaf)), dtype=np.int64)   # each row's node in each tree
        while not (leaf := self.leaf[trees, node]).all():
            go_left = X[rows, self.feature[trees, node]] <= self.threshold[trees, node]
            node = np.where(leaf, node, np.where(go_left, self.left[trees, node], self.right[trees, node]))
        return self.baseline + self.value[trees, node].sum(1)


SCORERS = {c.kind: c for c in (LinearScorer, TreeScorer)}


def load_scorer(state: dict):
    return SCORERS[state.get("kind", "logistic")](state)   # scorers saved before trees are logistic


def f1_with_ci(golds: list[set], preds: list[list[str]]) -> list[float]:
    """[doc-averaged F1, 95% bootstrap CI low, high]."""
    from ..metrics import bootstrap_ci, prf

    per_doc = [prf(set(p), g)[2] for g, p in zip(golds, preds)]
    return [round(float(np.mean(per_doc)), 4), *(round(x, 4) for x in bootstrap_ci(per_doc))]


def out_of_fold(doc_X: list, doc_uris: list, golds: list, params: dict, features: list[str], thesaurus,
                top_n: int, folds: int = 5, seed: int = 13) -> list[list[str]]:
    """Each document ranked by a scorer trained on the other folds (the honest estimate of what the
    scorer does on documents like its training set)."""
    order = np.random.default_rng(seed).permutation(len(doc_X))
    preds: list[list[str]] = [[] for _ in doc_X]
    for k in range(folds):
        held = set(order[k::folds].tolist())
        train = [i for i in range(len(doc_X)) if i not in held and len(doc_X[i])]
        X = np.vstack([doc_X[i] for i in train])
        y = np.concatenate([[u in golds[i] for u in doc_uris[i]] for i in train])
        scorer = SCORERS[params["scorer"]].train(X, y, params, features)
        for i in held:
            if len(doc_X[i]):
                ranked = [doc_uris[i][j] for j in np.argsort(-scorer(doc_X[i]))]
                preds[i] = thesaurus.prune_hierarchy(ranked[:3 * top_n])[:top_n]
    return preds


class RerankBackend(TaggerBackend):
    name = "rerank"
    needs_fit = True
    composite = True  # built with its members' parameters (see backends.make_backend)
    DEFAULT_PARAMETERS = {
        "members": "embedding,embedding@multilingual",  # retrievers whose cosines are features
        "candidates": 40,        # each member's best concepts per chunk taken as candidates
        "label_languages": "en,fr,es",  # labels matched in the text (candidates and features)
        "train_set": "",         # hand-indexed *.jsonl to train the scorer on; "": the synthetic split
        "neighbours": 10,        # training documents most like a chunk whose concepts are features
                                 # (kNN votes and priors, the documents kept in the model); 0: none
        "neighbour_candidates": 5,  # ... and each member's this many nearest whose concepts join the
                                    # candidates (with `neighbours` only)
        "scorer": "logistic",    # logistic (few training documents) | trees (gradient boosting)
        "C": 1.0,                # inverse regularisation of the logistic regression
        "trees": 200,            # boosting iterations of the trees scorer
        "leaves": 15,            # leaves per tree
        "learning_rate": 0.05,   # shrinkage of each tree
        "limit": 20,             # concepts returned per chunk
        "min_score": 0.0,        # probability below which a concept is not returned
    }

    def __init__(self, params: dict, thesaurus, model_dir=None, member_params: dict | None = None):
        super().__init__(params, thesaurus, model_dir)
        if self.model_dir is None or not (self.model_dir / SCORER).exists():
            raise ModelError(f"rerank: no fitted scorer in {self.model_dir} (run `tagflow tagger fit`)")
        state = json.loads((self.model_dir / STATE).read_text())
        neighbours = state["params"].get("neighbours", 0)   # models fitted before the memory have none
        memory = (RecordMemory.load(self.model_dir / RECORDS, neighbours, state["params"].get("neighbour_candidates", 0))
                  if neighbours else None)
        self.candidates = self._candidates(state, thesaurus, self.model_dir, memory)
        scorer = json.loads((self.model_dir / SCORER).read_text())
        names = _members(state["params"])
        if scorer["features"] != feature_names(names, self.candidates.memory is not None):
            raise ModelError(f"rerank: the scorer in {self.model_dir} was trained on other features; refit it")
        self.scorer = load_scorer(scorer)
        self.trained_on = frozenset(scorer.get("trained_ids", []))

    @staticmethod
    def _candidates(state: dict, thesaurus, model_dir: Path, memory: RecordMemory | None = None) -> Candidates:
        from . import get_backend
        from .base import parse_languages

        params = state["params"]
        members = {name: get_backend(name)(state["member_params"][name], thesaurus, model_dir / name)
                   for name in _members(params)}
        langs = parse_languages(params["label_languages"], thesaurus.languages(), "backend rerank.label_languages")
        return Candidates(members, thesaurus, langs, params["candidates"], memory)

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        if not chunks:
            return []
        out = []
        for uris, X in self.candidates(chunks):
            probs = self.scorer(X) if len(uris) else np.zeros(0)
            order = np.argsort(-probs, kind="stable")[:self.params["limit"]]
            out.append(ChunkSuggestions([Suggestion(uris[i], float(probs[i])) for i in order
                                         if probs[i] >= self.params["min_score"]]))
        return out

    def training_ids(self) -> frozenset[str]:
        return self.trained_on

    def describe(self) -> dict:
        memory = self.candidates.memory
        return {"members": {n: m.describe() for n, m in self.candidates.members.items()},
                "scorer": self.scorer.kind, "trained_on_documents": len(self.trained_on),
                "memory": {"documents": len(memory.concepts), "neighbours": memory.neighbours} if memory else None}

    @classmethod
    def fit(cls, params: dict, thesaurus, documents: list[dict], out_dir: Path,
            member_params: dict | None = None, validation: list[dict] | None = None) -> dict:
        from ...core.log import get_logger
        from . import fit_members, get_backend

        log = get_logger("rerank")
        params = cls.resolve_params(params, "rerank")
        if params["scorer"] not in SCORERS:
            raise ConfigError(f"backend rerank.scorer: one of {', '.join(SCORERS)}, got {params['scorer']!r}")
        if (params["candidates"] < 1 or params["C"] <= 0 or min(params["neighbours"], params["neighbour_candidates"]) < 0
                or params["trees"] < 1 or params["leaves"] < 2 or not 0 < params["learning_rate"] <= 1):
            raise ConfigError("backend rerank: candidates and trees must be at least 1, leaves at least 2, "
                              "neighbours and neighbour_candidates at least 0, C positive and learning_rate "
                              "in (0, 1]")
        names = _members(params)
        docs = load_train_set(params["train_set"], "backend rerank.train_set") if params["train_set"] else documents
        if not docs:
            raise DataError("backend rerank: no training documents for the scorer (synthetic split empty "
                            "and no train_set)")
        scorer_texts = {d["text"] for d in docs}
        for name in names:   # before any fitting: the refusal should not wait for a fine-tuning
            tuned_on = get_backend(name).resolve_params((member_params or {}).get(name), name)["train_set"]
            if tuned_on and scorer_texts & {d["text"] for d in load_train_set(tuned_on, f"backend {name}.train_set")}:
                raise ConfigError(f"backend rerank: member {name} is fine-tuned on the scorer's documents "
                                  f"({tuned_on}); its cosines there would be inflated: use a zero-shot "
                                  f"member or other documents")
        out_dir = Path(out_dir)
        resolved, summaries = fit_members(names, member_params, thesaurus, documents, out_dir, validation)
        state = {"params": params, "member_params": resolved}
        (out_dir / STATE).write_text(json.dumps(state, indent=2))
        candidates = cls._candidates(state, thesaurus, out_dir)   # the memory is attached once built
        trained_ids = sorted(str(d["id"]) for d in docs if "id" in d)
        # Each document is one chunk, read with its title as tagging reads one (text.with_title).
        # The memory needs every document's vectors before any is featurised, so the members'
        # views are kept (batch by batch) between the two passes.
        texts = [with_title(d["text"], d.get("title")) for d in docs]
        batch = 16
        starts = range(0, len(docs), batch)
        views = []
        for s in starts:
            views.append(candidates.views(texts[s:s + batch]))
            log.info("rerank: encoded %d/%d documents", min(s + batch, len(docs)), len(docs))
        if params["neighbours"]:
            vectors = {n: np.vstack([v[n][2] for v in views]) for n in names}
            candidates.memory = RecordMemory(vectors, [d["uris"] for d in docs], params["neighbours"],
                                             params["neighbour_candidates"])
            candidates.memory.save(out_dir / RECORDS)
        found = []
        for s, view in zip(starts, views):
            part = texts[s:s + batch]
            found += candidates.featurise(part, view, list(range(s, s + len(part))))
            log.info("rerank: candidate features for %d/%d documents", len(found), len(docs))
        features = feature_names(names, params["neighbours"] > 0)
        doc_uris, doc_X = [u for u, _ in found], [X for _, X in found]
        golds = [set(d["uris"]) for d in docs]
        top_n = 5
        held_out = out_of_fold(doc_X, doc_uris, golds, params, features, thesaurus, top_n)
        first_member = [thesaurus.prune_hierarchy([u for u, _ in sorted(
            zip(uris, X[:, 0]), key=lambda p: -p[1])][:3 * top_n])[:top_n] for uris, X in zip(doc_uris, doc_X)]
        y = np.concatenate([[u in g for u in uris] for uris, g in zip(doc_uris, golds)])
        scorer = SCORERS[params["scorer"]].train(np.vstack(doc_X), y, params, features)
        (out_dir / SCORER).write_text(json.dumps(scorer.state | {"trained_ids": trained_ids}, indent=2))
        reachable = sum(len(g & set(u)) for g, u in zip(golds, doc_uris)) / max(sum(map(len, golds)), 1)
        return {"members": summaries, "scorer_documents": len(docs),
                "scorer_trained_on": params["train_set"] or "synthetic training split",
                "candidates_per_document": round(float(np.mean([len(u) for u in doc_uris])), 1),
                "gold_reachable": round(reachable, 4),
                f"out_of_fold_f1_at_{top_n}": f1_with_ci(golds, held_out),
                f"{names[0]}_alone_f1_at_{top_n}": f1_with_ci(golds, first_member),
                "scorer": scorer.kind, "weights": dict(zip(features, np.round(scorer.weights(), 3).tolist()))}
