"""The concept index used for tagging: label (any language, preferred or alternative) -> URI,
and the broader/narrower/related graph, over the concept table written by `skos`."""
from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path

import pandas as pd


def normalize(label: str) -> str:
    """Match key for labels: case, accents-as-written, spacing and punctuation folded."""
    text = unicodedata.normalize("NFKC", label).casefold().strip()
    text = re.sub(r"[\s_\-–—]+", " ", text)
    return re.sub(r"[\"'`.,;:!?()\[\]]", "", text).strip()


def strings(value) -> list[str]:
    """The non-empty strings of a concept-table cell: one label (str, None or NaN) or a list of
    them (a list as `parse_skos` writes it, a numpy array once read back from Parquet)."""
    if value is None or isinstance(value, float):
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [v.strip() for v in values if isinstance(v, str) and v.strip()]


class Thesaurus:
    """Lookup structure over the concept table: label -> URI, and the broader graph."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self.label = dict(zip(table["uri"], table["pref_en"]))
        self.broader = {u: list(b) for u, b in zip(table["uri"], table["broader"])}
        self.micro = dict(zip(table["uri"], table["micro_thesaurus"]))
        self.related = {u: list(r) for u, r in zip(table["uri"], table["related"])}
        self.narrower = {u: list(n) for u, n in zip(table["uri"], table["narrower"])}
        # Preferred labels win over alternative ones when both normalize to the same key.
        self._index: dict[str, str] = {}
        alt_cols = [c for c in table.columns if c.startswith("alt_")]
        pref_cols = [c for c in table.columns if c.startswith("pref_")]
        for col in alt_cols:
            for uri, labels in zip(table["uri"], table[col]):
                for lab in labels:
                    self._index.setdefault(normalize(lab), uri)
        for col in reversed(pref_cols):  # pref_en last so English wins
            for uri, lab in zip(table["uri"], table[col]):
                if lab:
                    self._index[normalize(lab)] = uri
        self._ancestors: dict[str, frozenset[str]] = {}
        self._pref: dict[str, dict[str, str]] = {}  # lang -> uri -> preferred label, filled on use

    @classmethod
    def load(cls, path: str | Path) -> "Thesaurus":
        return cls(pd.read_parquet(path))

    def __len__(self) -> int:
        return len(self.label)

    def __contains__(self, uri: str) -> bool:
        return uri in self.label

    def resolve(self, label: str) -> str | None:
        """URI for a label in any language (preferred or alternative), else None."""
        return self._index.get(normalize(label))

    @functools.cached_property
    def _all_labels(self) -> dict[str, list[str]]:
        cols = [c for c in self.table.columns if c.startswith(("pref_", "alt_"))]
        return {row[0]: [v for value in row[1:] for v in strings(value)]
                for row in zip(self.table["uri"], *(self.table[c] for c in cols))}

    def all_labels(self, uri: str) -> list[str]:
        """Every preferred and alternative label of `uri`, in every language of the table."""
        return self._all_labels.get(uri, [])

    def is_pref_label(self, label: str) -> bool:
        uri = self.resolve(label)
        return uri is not None and normalize(self.label[uri]) == normalize(label)

    def ancestors(self, uri: str) -> frozenset[str]:
        if uri not in self._ancestors:
            seen: set[str] = set()
            stack = list(self.broader.get(uri, ()))
            while stack:
                parent = stack.pop()
                if parent not in seen:
                    seen.add(parent)
                    stack.extend(self.broader.get(parent, ()))
            self._ancestors[uri] = frozenset(seen)
        return self._ancestors[uri]

    def prune_hierarchy(self, uris: list[str]) -> list[str]:
        """Drop any concept that is an ancestor of another one in the list (keep the specific
        term); siblings and related concepts stay. Order is preserved. Ancestors follow every
        parent, so this holds under polyhierarchy."""
        chosen = set(uris)
        redundant = set().union(*(self.ancestors(u) for u in chosen)) if chosen else set()
        return [u for u in uris if u not in redundant]

    @functools.cached_property
    def _rows(self) -> dict[str, dict]:
        return {r["uri"]: r for r in self.table.to_dict("records")}

    def row(self, uri: str) -> dict:
        """The concept table's row for `uri` as a dict (labels, links, scope note)."""
        return self._rows[uri]

    def pref_label(self, uri: str, lang: str = "en") -> str:
        """The preferred label in `lang`, falling back to English when it has none."""
        if lang == "en" or f"pref_{lang}" not in self.table.columns:
            return self.label[uri]
        if lang not in self._pref:
            self._pref[lang] = dict(zip(self.table["uri"], self.table[f"pref_{lang}"]))
        return self._pref[lang].get(uri) or self.label[uri]

    def languages(self) -> list[str]:
        return sorted(c.removeprefix("pref_") for c in self.table.columns if c.startswith("pref_"))
