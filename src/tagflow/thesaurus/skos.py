"""SKOS thesaurus: parse a dump into a concept table.

The concept table has one row per skos:Concept, keyed by URI (never by label or position):
uri, pref_<lang>, alt_<lang> (list), broader/narrower/related (URI lists), micro_thesaurus,
domain (URIs + English labels), scope_note (English) and deprecated (`owl:deprecated true`). It
is written as Parquet.
Nothing here is UNESCO-specific beyond reading `unescovoc:MicroThesaurus`/`Domain` when present.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.errors import DataError

SKOS = "http://www.w3.org/2004/02/skos/core#"
UNESCOVOC = "http://vocabularies.unesco.org/ontology#"
ISO_THES = "http://purl.org/iso25964/skos-thes#"
OWL = "http://www.w3.org/2002/07/owl#"


class ThesaurusError(DataError):
    """The dump cannot be turned into a concept table."""


def parse_skos(path: str | Path, languages: list[str]) -> pd.DataFrame:
    import rdflib
    from rdflib.namespace import RDF, SKOS as S

    path = Path(path)
    if not path.exists():
        raise ThesaurusError(f"{path}: thesaurus dump not found (run `tagflow fetch` first)")
    if path.stat().st_size == 0:
        raise ThesaurusError(f"{path}: thesaurus dump is empty (0 bytes)")
    fmt = "xml" if path.suffix in {".rdf", ".xml", ".owl"} else "turtle"
    graph = rdflib.Graph()
    try:
        graph.parse(path, format=fmt)
    except Exception as exc:  # rdflib raises several parser-specific types
        raise ThesaurusError(f"{path}: malformed {fmt} ({type(exc).__name__}: {exc})") from exc

    concepts = sorted(set(graph.subjects(RDF.type, S.Concept)), key=str)
    if not concepts:
        raise ThesaurusError(f"{path}: parsed {len(graph)} triples but found no skos:Concept")

    micro = set(graph.subjects(RDF.type, rdflib.URIRef(UNESCOVOC + "MicroThesaurus")))
    groups = micro or set(graph.subjects(RDF.type, S.Collection))
    member_of = {}
    for group in sorted(groups, key=str):
        for member in graph.objects(group, S.member):
            member_of.setdefault(member, group)
    super_group = rdflib.URIRef(ISO_THES + "superGroup")
    OWL_DEPRECATED = rdflib.URIRef(OWL + "deprecated")

    def label(node, prop=S.prefLabel, lang="en") -> str:
        values = [str(o) for o in graph.objects(node, prop) if getattr(o, "language", None) == lang]
        return sorted(values)[0] if values else ""

    def uris(node, prop) -> list[str]:
        return sorted(str(o) for o in graph.objects(node, prop) if isinstance(o, rdflib.URIRef))

    rows = []
    for c in concepts:
        row = {"uri": str(c)}
        for lang in languages:
            row[f"pref_{lang}"] = label(c, S.prefLabel, lang)
            row[f"alt_{lang}"] = sorted(str(o) for o in graph.objects(c, S.altLabel)
                                        if getattr(o, "language", None) == lang)
        row["broader"] = uris(c, S.broader)
        row["narrower"] = uris(c, S.narrower)
        row["related"] = uris(c, S.related)
        group = member_of.get(c)
        domain = next(iter(sorted(graph.objects(group, super_group), key=str)), None) if group else None
        row["micro_thesaurus"] = str(group) if group else ""
        row["micro_thesaurus_label"] = label(group) if group else ""
        row["domain"] = str(domain) if domain else ""
        row["domain_label"] = label(domain) if domain else ""
        row["scope_note"] = label(c, S.scopeNote)
        row["deprecated"] = any(str(o).lower() in ("true", "1") for o in graph.objects(c, OWL_DEPRECATED))
        rows.append(row)
    table = pd.DataFrame(rows)
    # SKOS states narrower as the inverse of broader and related as symmetric; dumps often
    # carry only one side of each.
    _symmetrize_hierarchy(table)
    if (table["pref_en"] == "").all():
        raise ThesaurusError(f"{path}: no concept has an English skos:prefLabel")
    return table


def _symmetrize_hierarchy(table: pd.DataFrame) -> None:
    broader = {u: set(b) for u, b in zip(table["uri"], table["broader"])}
    narrower = {u: set(n) for u, n in zip(table["uri"], table["narrower"])}
    for child, parents in list(broader.items()):
        for parent in parents:
            narrower.setdefault(parent, set()).add(child)
    for parent, children in list(narrower.items()):
        for child in children:
            broader.setdefault(child, set()).add(parent)
    table["broader"] = [sorted(broader.get(u, ())) for u in table["uri"]]
    table["narrower"] = [sorted(narrower.get(u, ())) for u in table["uri"]]
    related = {u: set(r) for u, r in zip(table["uri"], table["related"])}
    for uri, others in list(related.items()):
        for other in others:
            related.setdefault(other, set()).add(uri)  # skos:related is symmetric
    table["related"] = [sorted(related.get(u, ())) for u in table["uri"]]


def table_stats(table: pd.DataFrame) -> dict:
    return {
        "concepts": int(len(table)),
        "with_pref_en": int((table["pref_en"] != "").sum()),
        "alt_labels": int(sum(len(v) for col in table if col.startswith("alt_") for v in table[col])),
        "broader_links": int(table["broader"].map(len).sum()),
        "related_links": int(table["related"].map(len).sum()),
        "micro_thesauri": int(table.loc[table["micro_thesaurus"] != "", "micro_thesaurus"].nunique()),
        "domains": int(table.loc[table["domain"] != "", "domain"].nunique()),
        "top_concepts": int((table["broader"].map(len) == 0).sum()),
    }


def write_table(table: pd.DataFrame, out: str | Path, stats_path: str | Path | None = None) -> None:
    from ..core.io import atomic_path

    with atomic_path(out) as tmp:
        table.to_parquet(tmp, index=False)
    if stats_path:
        from ..core.io import write_json
        write_json(stats_path, table_stats(table))
