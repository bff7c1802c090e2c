"""SKOS parsing and the Thesaurus index, on tests/data/tiny.ttl (9 concepts; see its comments)
and, when the shared data mirror is present, on the Finnish YSO archaeology extract (RDF/XML)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tagflow.thesaurus import Thesaurus, ThesaurusError, normalize, parse_skos, table_stats, write_table

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.ttl"
YSO = ROOT.parent / "shared" / "data" / "yso-archaeology" / "yso-archaeology.rdf"
T = "http://example.org/thes/"
C = {n: f"{T}c{n}" for n in range(1, 10)}


@pytest.fixture(scope="module")
def table():
    return parse_skos(TINY, ["en", "fr"])


@pytest.fixture(scope="module")
def th(table):
    return Thesaurus(table)


def row(table, n: int) -> dict:
    return table.set_index("uri").loc[C[n]].to_dict()


# ---- concept table -------------------------------------------------------------------------

def test_one_row_per_concept_keyed_by_uri(table):
    assert sorted(table["uri"]) == sorted(C.values())  # collections and the scheme are not concepts
    assert table["uri"].is_unique


def test_broader_inferred_from_narrower(table):
    # tiny.ttl states only `c2 skos:narrower c3`; the inverse must be filled in
    assert list(row(table, 3)["broader"]) == [C[2]]
    assert list(row(table, 2)["broader"]) == [C[1]]
    assert list(row(table, 1)["broader"]) == []


def test_narrower_inferred_from_broader(table):
    assert set(row(table, 1)["narrower"]) == {C[2], C[4]}
    assert set(row(table, 7)["narrower"]) == {C[8], C[9]}
    assert list(row(table, 3)["narrower"]) == []


def test_labels_per_language(table):
    c2 = row(table, 2)
    assert c2["pref_en"] == "Higher education"
    assert c2["pref_fr"] == "Enseignement supérieur"
    assert list(c2["alt_en"]) == ["Tertiary education"]
    assert list(c2["alt_fr"]) == []
    assert row(table, 4)["pref_fr"] == ""  # missing translation is an empty string, not NaN
    assert list(row(table, 5)["alt_en"]) == ["Educators"]
    assert "pref_es" not in table.columns  # only the requested languages


def test_groups_domains_and_notes(table):
    c2, c5, c9 = row(table, 2), row(table, 5), row(table, 9)
    assert (c2["micro_thesaurus"], c2["micro_thesaurus_label"]) == (f"{T}mt1", "Education systems")
    assert (c5["micro_thesaurus"], c5["micro_thesaurus_label"]) == (f"{T}mt2", "Teaching")
    assert (c9["micro_thesaurus"], c9["micro_thesaurus_label"]) == (f"{T}mt3", "Heritage")
    assert (c2["domain"], c2["domain_label"]) == (f"{T}dom1", "Education")
    assert (c5["domain"], c5["domain_label"]) == (f"{T}dom1", "Education")
    assert (c9["domain"], c9["domain_label"]) == (f"{T}dom2", "Culture")
    assert row(table, 1)["scope_note"] == "The process of teaching and learning."
    assert row(table, 2)["scope_note"] == ""


def test_related_links_are_made_symmetric(table):
    # skos:related is symmetric; tiny.ttl states c6 related c5 and c9 related c8 on one side only
    assert list(row(table, 3)["related"]) == [C[5]]
    assert list(row(table, 5)["related"]) == [C[3], C[6]]
    assert list(row(table, 8)["related"]) == [C[9]]
    assert list(row(table, 9)["related"]) == [C[8]]


def test_table_stats(table):
    assert table_stats(table) == {
        "concepts": 9,
        "with_pref_en": 9,
        "alt_labels": 2,          # Tertiary education, Educators
        "broader_links": 5,       # c2->c1, c3->c2, c4->c1, c8->c7, c9->c7
        "related_links": 6,       # c3<->c5, c5<->c6, c8<->c9 (both directions)
        "micro_thesauri": 3,
        "domains": 2,
        "top_concepts": 4,        # c1, c5, c6, c7
    }


def test_write_table_round_trip(table, tmp_path):
    out, stats = tmp_path / "out" / "concepts.parquet", tmp_path / "stats.json"
    write_table(table, out, stats)
    assert json.loads(stats.read_text()) == table_stats(table)
    assert sorted(p.name for p in out.parent.iterdir()) == ["concepts.parquet"]  # no temp leftovers
    loaded = Thesaurus.load(out)
    assert loaded.resolve("Tertiary education") == C[2]
    assert loaded.ancestors(C[3]) == {C[1], C[2]}


# ---- Thesaurus index -----------------------------------------------------------------------

@pytest.mark.parametrize("label, uri", [
    ("Higher education", C[2]),
    ("HIGHER EDUCATION", C[2]),
    ("  higher   education ", C[2]),
    ("Higher-education", C[2]),
    ("higher_education", C[2]),
    ("Higher education.", C[2]),
    ('"Higher education"', C[2]),
    ("(Higher education)", C[2]),
    ("Tertiary education", C[2]),         # altLabel -> the concept's URI
    ("educators", C[5]),
    ("Enseignement supérieur", C[2]),     # French prefLabel
    ("ÉDUCATION", C[1]),
    ("Université", C[3]),
    ("enseignement superieur", None),     # accents are matched as written, not stripped
    ("Quantum physics", None),
    ("", None),
])
def test_resolve(th, label, uri):
    assert th.resolve(label) == uri


def test_normalize_folds_case_space_and_punctuation():
    assert normalize("  Higher–Education!? ") == "higher education"
    assert normalize("Éducation") == "éducation"


def test_len_and_contains(th):
    assert len(th) == 9
    assert C[3] in th
    assert f"{T}mt1" not in th


def test_is_pref_label(th):
    assert th.is_pref_label("Higher education")
    assert th.is_pref_label("higher education.")
    assert not th.is_pref_label("Tertiary education")       # alternative label
    assert not th.is_pref_label("Enseignement supérieur")   # preferred, but not the English one
    assert not th.is_pref_label("Quantum physics")


def test_ancestors_are_transitive(th):
    assert th.ancestors(C[3]) == {C[1], C[2]}
    assert th.ancestors(C[2]) == {C[1]}
    assert th.ancestors(C[9]) == {C[7]}
    assert th.ancestors(C[1]) == frozenset()
    assert th.ancestors("http://elsewhere/x") == frozenset()


def test_prune_hierarchy_keeps_most_specific(th):
    assert th.prune_hierarchy([C[1], C[3], C[2], C[5]]) == [C[3], C[5]]
    assert th.prune_hierarchy([C[2], C[4]]) == [C[2], C[4]]   # no ancestor pair: both kept


def test_prune_hierarchy_keeps_siblings_and_order(th):
    assert th.prune_hierarchy([C[9], C[7], C[8]]) == [C[9], C[8]]
    assert th.prune_hierarchy([C[8], C[9]]) == [C[8], C[9]]
    assert th.prune_hierarchy([C[3], C[5]]) == [C[3], C[5]]  # related concepts stay
    assert th.prune_hierarchy([]) == []


# ---- errors --------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(ThesaurusError, match="not found") as err:
        parse_skos(tmp_path / "nope.ttl", ["en"])
    assert "nope.ttl" in str(err.value)


def test_empty_file(tmp_path):
    dump = tmp_path / "empty.ttl"
    dump.write_text("")
    with pytest.raises(ThesaurusError, match="empty") as err:
        parse_skos(dump, ["en"])
    assert "empty.ttl" in str(err.value)


def test_malformed_turtle(tmp_path):
    dump = tmp_path / "broken.ttl"
    dump.write_text(TINY.read_text()[:900] + ' ;; skos:prefLabel "unterminated\n')
    with pytest.raises(ThesaurusError, match="malformed") as err:
        parse_skos(dump, ["en"])
    assert "broken.ttl" in str(err.value)


def test_turtle_without_concepts(tmp_path):
    dump = tmp_path / "foaf.ttl"
    dump.write_text("@prefix ex: <http://example.org/> .\nex:alice ex:knows ex:bob .\n")
    with pytest.raises(ThesaurusError, match="no skos:Concept") as err:
        parse_skos(dump, ["en"])
    assert "foaf.ttl" in str(err.value) and "1 triples" in str(err.value)


def test_concepts_without_english_labels(tmp_path):
    dump = tmp_path / "fr.ttl"
    dump.write_text("@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
                    '<http://x/a> a skos:Concept ; skos:prefLabel "Musées"@fr .\n')
    with pytest.raises(ThesaurusError, match="English skos:prefLabel"):
        parse_skos(dump, ["en", "fr"])


# ---- not tied to UNESCO, Turtle or English ---------------------------------------------------

@pytest.mark.skipif(not YSO.exists(), reason=f"{YSO} not present (shared data mirror)")
def test_parses_yso_rdf_xml_in_finnish():
    table = parse_skos(YSO, ["fi", "en"])
    stats = table_stats(table)
    assert stats["concepts"] > 100
    assert (table["pref_fi"] != "").all()
    assert stats["broader_links"] > 0 and stats["domains"] == 0  # YSO has no UNESCO domains
    th = Thesaurus(table)
    some = table.iloc[0]
    assert th.resolve(some["pref_fi"]) == some["uri"]
    assert th.resolve(some["pref_en"].upper()) == some["uri"]
