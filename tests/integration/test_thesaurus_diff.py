"""`tagflow thesaurus diff` on the tiny thesaurus and an edited copy: every kind of change is
found, gold labels of a data set that point at changed concepts are counted, and the CLI prints
the summary and writes the full report."""
from __future__ import annotations

import json

import shutil
from pathlib import Path

from tagflow.cli import main
from tagflow.thesaurus.diff import diff_dumps

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"

T = "http://example.org/thes/"


def edited_copy(tiny_ttl, path):
    text = tiny_ttl.read_text()
    text = text.replace('"Université"@fr', '"Universités"@fr')                      # relabelled (fr)
    text = text.replace('skos:altLabel "Educators"@en', 'skos:altLabel "Educators"@en , "Instructors"@en')
    text = text.replace('t:c4 a skos:Concept ; skos:prefLabel "Primary education"@en ; skos:broader t:c1 .',
                        't:c4 a skos:Concept ; skos:prefLabel "Primary education"@en ; skos:broader t:c2 .')
    text = text.replace('skos:narrower t:c2 , t:c4 ;', 'skos:narrower t:c2 ;')         # c4 moved c1 -> c2
    text = text.replace('t:c9 a skos:Concept ; skos:prefLabel "Archaeological sites"@en ; skos:broader t:c7 ; skos:related t:c8 .', '')
    text = text.replace('skos:narrower t:c8 , t:c9 .', 'skos:narrower t:c8 .')          # c9 removed
    text = text.replace('t:c6 a skos:Concept ; skos:prefLabel "Teaching methods"@en ;',
                        't:c6 a skos:Concept ; skos:prefLabel "Teaching methods"@en ; '
                        '<http://www.w3.org/2002/07/owl#deprecated> true ;')          # c6 deprecated
    text += '\nt:c10 a skos:Concept ; skos:prefLabel "Libraries"@en ; skos:broader t:c7 .\n'  # added
    path.write_text(text)
    return path


def test_every_kind_of_change_and_the_gold_labels_it_touches(tiny_ttl, tmp_path):
    new = edited_copy(tiny_ttl, tmp_path / "new.ttl")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "uris": [T + "c9", T + "c8"]},      # removed concept
        {"id": "b", "uris": [T + "c3"]},                # relabelled
        {"id": "c", "uris": [T + "c5", T + "c7"]},      # untouched (alt labels only)
        {"id": "d", "uris": [T + "c6", T + "c4"]},      # deprecated + moved
    ]) + "\n")
    d = diff_dumps(tiny_ttl, new, ["en", "fr"], [gold], check_models=False)
    assert [c["uri"] for c in d.added] == [T + "c10"]
    assert [c["uri"] for c in d.removed] == [T + "c9"]
    assert [c["uri"] for c in d.deprecated] == [T + "c6"]
    assert d.relabelled == [{"uri": T + "c3", "lang": "fr", "old": "Université", "new": "Universités"}]
    assert d.alt_labels_changed == 1
    assert d.moved == [{"uri": T + "c4", "label": "Primary education",
                        "old_broader": [T + "c1"], "new_broader": [T + "c2"]}]
    hit = d.datasets[str(gold)]
    assert (hit["rows"], hit["broken"], hit["to_review"]) == (4, 2, 2)
    assert hit["broken_ids"] == ["a", "d"] and hit["to_review_ids"] == ["b", "d"]
    same = diff_dumps(tiny_ttl, tiny_ttl, ["en", "fr"], check_models=False)
    assert all(v == 0 for v in same.counts().values())


def test_cli_prints_the_summary_and_writes_the_report(tiny_ttl, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/absent.db")
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    new = edited_copy(tiny_ttl, tmp_path / "new.ttl")
    assert main(["thesaurus", "diff", str(tiny_ttl), str(new), "--json", "out.json"]) == 0
    out = capsys.readouterr().out
    assert "added 1, removed 1, deprecated 1, relabelled 1 (1 labels), alt labels changed 1, moved 1" in out
    assert "[fr] 'Université' -> 'Universités'" in out
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["counts"]["moved"] == 1 and report["models"] == []
    assert not (tmp_path / "absent.db").exists()     # a missing store is not created
    assert main(["thesaurus", "diff", str(tiny_ttl), str(tmp_path / "nope.ttl")]) == 2   # one line, no traceback
    assert "nope.ttl: thesaurus dump not found" in capsys.readouterr().err
