"""What changed between two thesaurus dumps, and what the change touches.

    tagflow thesaurus diff OLD.ttl NEW.ttl [--json report.json]

Concepts are compared by URI: added, removed, deprecated (`owl:deprecated` set in the new dump),
relabelled (a preferred label changed, per language; alternative labels counted apart) and moved
(their broader concepts changed). Then the consequences: gold labels of the data sets (JSONL rows
with `uris`: the synthetic splits, the dev set) that point at removed or deprecated concepts
(broken) or at relabelled or moved ones (to review), and the registered models built on another
dump than the new one (their model card records the dump's sha256)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..core.io import read_jsonl
from .index import strings


@dataclass
class ThesaurusDiff:
    old: str
    new: str
    concepts: dict[str, int]                        # old/new concept counts
    added: list[dict] = field(default_factory=list)      # {uri, label}
    removed: list[dict] = field(default_factory=list)    # {uri, label}
    deprecated: list[dict] = field(default_factory=list)  # {uri, label}
    relabelled: list[dict] = field(default_factory=list)  # {uri, lang, old, new}
    alt_labels_changed: int = 0                     # concepts whose alternative labels changed
    moved: list[dict] = field(default_factory=list)      # {uri, label, old_broader, new_broader}
    datasets: dict[str, dict] = field(default_factory=dict)  # name -> affected rows
    models: list[dict] = field(default_factory=list)     # registered versions on another dump

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed),
                "deprecated": len(self.deprecated),
                "relabelled": len({r["uri"] for r in self.relabelled}),
                "relabellings": len(self.relabelled), "alt_labels_changed": self.alt_labels_changed,
                "moved": len(self.moved)}

    def as_dict(self) -> dict:
        return {"counts": self.counts(), **asdict(self)}


def _languages(table: pd.DataFrame) -> list[str]:
    return sorted(c.removeprefix("pref_") for c in table.columns if c.startswith("pref_"))


def diff_tables(old: pd.DataFrame, new: pd.DataFrame, old_name: str = "old", new_name: str = "new") -> ThesaurusDiff:
    """The concept-level differences between two concept tables (see skos.parse_skos)."""
    before, after = old.set_index("uri"), new.set_index("uri")
    label = lambda table, uri: table.at[uri, "pref_en"]  # noqa: E731
    out = ThesaurusDiff(old_name, new_name, {"old": len(before), "new": len(after)})
    out.added = [{"uri": u, "label": label(after, u)} for u in sorted(set(after.index) - set(before.index))]
    out.removed = [{"uri": u, "label": label(before, u)} for u in sorted(set(before.index) - set(after.index))]
    common = sorted(set(before.index) & set(after.index))
    was_deprecated = before["deprecated"] if "deprecated" in before else pd.Series(False, index=before.index)
    is_deprecated = after["deprecated"] if "deprecated" in after else pd.Series(False, index=after.index)
    out.deprecated = [{"uri": u, "label": label(after, u)} for u in common
                      if bool(is_deprecated[u]) and not bool(was_deprecated[u])]
    langs = sorted(set(_languages(old)) & set(_languages(new)))
    for u in common:
        for lang in langs:
            a, b = before.at[u, f"pref_{lang}"] or "", after.at[u, f"pref_{lang}"] or ""
            if a != b:
                out.relabelled.append({"uri": u, "lang": lang, "old": a, "new": b})
        if any(sorted(strings(before.at[u, f"alt_{lang}"])) != sorted(strings(after.at[u, f"alt_{lang}"]))
               for lang in langs if f"alt_{lang}" in before and f"alt_{lang}" in after):
            out.alt_labels_changed += 1
        a, b = sorted(strings(before.at[u, "broader"])), sorted(strings(after.at[u, "broader"]))
        if a != b:
            out.moved.append({"uri": u, "label": label(after, u), "old_broader": a, "new_broader": b})
    return out


def affected_rows(rows: list[dict], diff: ThesaurusDiff) -> dict:
    """Rows (with gold `uris`) whose gold concepts the change breaks or asks to review."""
    broken = {c["uri"] for c in diff.removed + diff.deprecated}
    review = {c["uri"] for c in diff.relabelled + diff.moved}
    hit_broken = [r.get("id", i) for i, r in enumerate(rows) if broken & set(r.get("uris") or [])]
    hit_review = [r.get("id", i) for i, r in enumerate(rows) if review & set(r.get("uris") or [])]
    return {"rows": len(rows), "broken": len(hit_broken), "to_review": len(hit_review),
            "broken_ids": hit_broken[:50], "to_review_ids": hit_review[:50]}


def dataset_rows(path: Path) -> list[dict]:
    """A JSONL file, or every *.jsonl in a folder."""
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    return [row for f in files for row in read_jsonl(f)]


def models_on_other_dumps(new_sha256: str) -> list[dict]:
    """Registered versions whose model card names another dump than `new_sha256` (the project's
    store: MLFLOW_TRACKING_URI or ./mlflow.db; a local store that does not exist is not created)."""
    from ..core import registry

    uri = registry.tracking_uri()
    if uri.startswith("sqlite:") and not Path(uri.split("///", 1)[-1]).exists():
        return []
    out = []
    for version in registry._client().search_model_versions(max_results=1000):
        sha = version.tags.get("card.thesaurus.sha256")
        if sha and sha != new_sha256:
            out.append({"model": version.name, "version": version.version,
                        "dump": version.tags.get("card.thesaurus.dump", ""), "sha256": sha,
                        "aliases": list(getattr(version, "aliases", []) or [])})
    return out


def diff_dumps(old: str | Path, new: str | Path, languages: list[str], datasets: list[Path] = (),
               check_models: bool = True) -> ThesaurusDiff:
    from ..core.io import file_sha256
    from .skos import parse_skos

    old, new = Path(old), Path(new)
    result = diff_tables(parse_skos(old, languages), parse_skos(new, languages), old.name, new.name)
    for path in datasets:
        if path.exists():
            result.datasets[str(path)] = affected_rows(dataset_rows(path), result)
    if check_models:
        try:
            result.models = models_on_other_dumps(file_sha256(new))
        except Exception as exc:  # the diff stands on its own; the registry is a bonus
            result.models = [{"error": f"registry not read: {type(exc).__name__}: {exc}"}]
    return result


def summary_lines(diff: ThesaurusDiff, examples: int = 5) -> list[str]:
    c = diff.counts()
    lines = [f"{diff.old} ({diff.concepts['old']} concepts) -> {diff.new} ({diff.concepts['new']} concepts)",
             f"added {c['added']}, removed {c['removed']}, deprecated {c['deprecated']}, relabelled "
             f"{c['relabelled']} ({c['relabellings']} labels), alt labels changed {c['alt_labels_changed']}, "
             f"moved {c['moved']}"]
    for kind in ("added", "removed", "deprecated"):
        for item in getattr(diff, kind)[:examples]:
            lines.append(f"  {kind:<10} {item['uri']}  {item['label']}")
    for item in diff.relabelled[:examples]:
        lines.append(f"  relabelled {item['uri']}  [{item['lang']}] {item['old']!r} -> {item['new']!r}")
    for item in diff.moved[:examples]:
        lines.append(f"  moved      {item['uri']}  {item['label']}: {item['old_broader']} -> {item['new_broader']}")
    for name, hit in diff.datasets.items():
        lines.append(f"data set {name}: {hit['rows']} rows, {hit['broken']} with removed/deprecated gold "
                     f"concepts, {hit['to_review']} with relabelled/moved ones")
    for model in diff.models:
        lines.append(f"model {model['model']} v{model['version']} {model.get('aliases') or ''} built on "
                     f"{model['dump']} ({model['sha256'][:12]}): re-fit on the new dump"
                     if "error" not in model else model["error"])
    return lines
