"""Lexical matching with a learned scorer (after Annif's MLLM).

Candidates: every place a concept's preferred or alternative label, in the document's language,
occurs in the text after folding case and accents and stemming each word (Snowball). Features per
candidate: frequency, density, first position, spread, preferred vs alternative label, label
length, ambiguity, depth and narrower count in the hierarchy, and how many other candidates are its
ancestors, descendants or related concepts. A gradient-boosted classifier trained on the synthetic
training split (candidate is gold or not) turns features into a score. Concepts a text never names
are out of reach: this backend is precise, not exhaustive, which is why ensembles exist.
"""
from __future__ import annotations

import json
import math
import pickle
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ...core.errors import ModelError
from ...thesaurus.index import strings
from ..text import guess_language, stems, tokens
from .base import ChunkSuggestions, Suggestion, TaggerBackend

STATE = "lexical.pkl"
FEATURES = ["log_count", "density", "first", "spread", "pref", "label_words", "ambiguity", "depth",
            "log_narrower", "ancestors_here", "descendants_here", "related_here", "same_micro", "top"]


class LabelIndex:
    """Stemmed label -> concepts, per language; matches every label occurrence in a text."""

    def __init__(self, thesaurus, languages: list[str]):
        table = thesaurus.table
        self.languages = [lang for lang in languages if f"pref_{lang}" in table.columns]
        self.keys: dict[str, dict[tuple, set[str]]] = {}
        self.pref: dict[str, set[tuple[str, tuple]]] = {}
        self.max_words = 1
        for lang in self.languages:
            keys: dict[tuple, set[str]] = defaultdict(set)
            pref: set[tuple[str, tuple]] = set()
            alt_col = f"alt_{lang}" if f"alt_{lang}" in table.columns else None
            for row in table.itertuples(index=False):
                uri = row.uri
                labels = [(getattr(row, f"pref_{lang}"), True)]
                labels += [(a, False) for a in strings(getattr(row, alt_col))] if alt_col else []
                for label, is_pref in labels:
                    if not isinstance(label, str) or not label.strip():
                        continue
                    key = tuple(stems(tokens(label), lang))
                    if not key:
                        continue
                    keys[key].add(uri)
                    if is_pref:
                        pref.add((uri, key))
                    self.max_words = max(self.max_words, len(key))
            self.keys[lang], self.pref[lang] = dict(keys), pref

    def match(self, text: str, lang: str) -> tuple[dict[str, "Occurrences"], int]:
        """Occurrences per concept, and the text's length in words."""
        words = stems(tokens(text), lang)
        keys = self.keys.get(lang, {})
        found: dict[str, Occurrences] = {}
        covered_until = 0  # a match inside a longer one ("education" in "higher education") is not one
        for i in range(len(words)):
            for n in range(min(self.max_words, len(words) - i), 0, -1):
                key = tuple(words[i:i + n])
                uris = keys.get(key)
                if not uris:
                    continue
                if i + n > covered_until:
                    covered_until = i + n
                    for uri in uris:
                        occ = found.setdefault(uri, Occurrences())
                        occ.positions.append(i)
                        occ.label_words = max(occ.label_words, n)
                        occ.ambiguity = max(occ.ambiguity, 1.0 / len(uris))
                        occ.pref = occ.pref or (uri, key) in self.pref[lang]
                break  # the longest label starting here; shorter ones lie inside it
        return found, len(words)


@dataclass
class Occurrences:
    positions: list[int] = field(default_factory=list)
    label_words: int = 0
    ambiguity: float = 0.0
    pref: bool = False


def features(found: dict[str, Occurrences], n_words: int, thesaurus) -> tuple[list[str], list[list[float]]]:
    uris = sorted(found)
    here = set(uris)
    ancestors = {u: thesaurus.ancestors(u) for u in uris}
    micro_counts: dict[str, int] = defaultdict(int)
    for u in uris:
        micro_counts[thesaurus.micro.get(u, "")] += 1
    n = max(n_words, 1)
    rows = []
    for u in uris:
        occ = found[u]
        first, last = min(occ.positions), max(occ.positions)
        rows.append([
            math.log1p(len(occ.positions)),
            100.0 * len(occ.positions) / n,
            first / n,
            (last - first) / n,
            float(occ.pref),
            float(occ.label_words),
            occ.ambiguity,
            float(len(ancestors[u])),
            math.log1p(len(thesaurus.narrower.get(u, ()))),
            float(len(ancestors[u] & here)),
            float(sum(u in ancestors[v] for v in uris)),
            float(len(set(thesaurus.related.get(u, ())) & here)),
            (micro_counts[thesaurus.micro.get(u, "")] - 1) / max(len(uris) - 1, 1),
            float(not thesaurus.broader.get(u)),
        ])
    return uris, rows


def _heuristic(row: list[float]) -> float:
    """Score without a trained model (too little training data): frequent, early, specific."""
    z = (-1.5 + 0.9 * row[0] + 0.8 * row[4] + 0.4 * row[5] - 1.0 * row[2] + 0.3 * row[9]
         - 0.8 * (1 - row[6]))
    return 1.0 / (1.0 + math.exp(-z))


class LexicalBackend(TaggerBackend):
    name = "lexical"
    needs_fit = True
    DEFAULT_PARAMETERS = {
        "languages": "",       # label languages to match, comma-separated ("" = all in the thesaurus)
        "limit": 20,           # candidates returned per chunk, best first
        "min_score": 0.1,      # candidates scoring below are dropped
        "min_examples": 50,    # fewer training candidates of each class: heuristic scores instead
    }

    def __init__(self, params: dict, thesaurus, model_dir: str | Path | None = None):
        super().__init__(params, thesaurus, model_dir)
        path = self.model_dir / STATE if self.model_dir else None
        if path is None or not path.exists():
            raise ModelError(f"lexical backend: no fitted state in {self.model_dir} (run `tagflow tagger fit`)")
        with path.open("rb") as fh:
            state = pickle.load(fh)
        # The index was built from the thesaurus the model was fitted with (its card names it).
        self.scorer, self.index = state["scorer"], state["index"]

    @staticmethod
    def _languages(params: dict, thesaurus) -> list[str]:
        wanted = [x.strip() for x in params["languages"].split(",") if x.strip()]
        return wanted or thesaurus.languages()

    def _candidates(self, text: str) -> tuple[list[str], list[list[float]]]:
        lang = guess_language(text, self.index.languages)
        found, n_words = self.index.match(text, lang)
        return features(found, n_words, self.thesaurus) if found else ([], [])

    def _score(self, rows: list[list[float]]) -> list[float]:
        if not rows:
            return []
        if self.scorer is None:
            return [_heuristic(r) for r in rows]
        return [float(p) for p in self.scorer.predict_proba(rows)[:, 1]]

    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        out = []
        for chunk in chunks:
            uris, rows = self._candidates(chunk)
            scored = sorted(zip(uris, self._score(rows)), key=lambda x: -x[1])
            keep = [Suggestion(u, s) for u, s in scored if s >= self.params["min_score"]]
            out.append(ChunkSuggestions(keep[:self.params["limit"]]))
        return out

    @classmethod
    def fit(cls, params: dict, thesaurus, documents: list[dict], out_dir: Path) -> dict:
        params = cls.resolve_params(params, "lexical")
        index = LabelIndex(thesaurus, cls._languages(params, thesaurus))
        X, y = [], []
        for doc in documents:
            lang = guess_language(doc["text"], index.languages)
            found, n_words = index.match(doc["text"], lang)
            uris, rows = features(found, n_words, thesaurus)
            gold = set(doc["uris"])
            X += rows
            y += [int(u in gold) for u in uris]
        positives, negatives = sum(y), len(y) - sum(y)
        scorer = None
        if min(positives, negatives) >= params["min_examples"]:
            from sklearn.ensemble import HistGradientBoostingClassifier
            scorer = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                                    l2_regularization=1.0, random_state=13).fit(X, y)
        with (Path(out_dir) / STATE).open("wb") as fh:
            pickle.dump({"scorer": scorer, "index": index, "features": FEATURES}, fh)
        gold_total = sum(len(set(d["uris"])) for d in documents)
        summary = {"documents": len(documents), "candidates": len(y), "positive_candidates": positives,
                   "gold_reachable": round(positives / gold_total, 4) if gold_total else 0.0,
                   "scorer": "gradient boosting" if scorer else "heuristic (too few examples)"}
        (Path(out_dir) / "lexical.json").write_text(json.dumps(summary | {"params": params}, indent=2))
        return summary
