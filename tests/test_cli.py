"""`tagflow` commands through cli.main(): profile switching edits one line of params.yaml, and a
pipeline step's library error becomes exit code 1 with a message naming the problem."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tagflow.cli import main
from tagflow.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"


@pytest.fixture
def params(tmp_path):
    path = tmp_path / "params.yaml"
    shutil.copyfile(PARAMS, path)
    return path


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    a, b = before.splitlines(), after.splitlines()
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b) if x != y]


@pytest.mark.parametrize("target", ["smoke", "gpu"])
def test_profile_switch_changes_only_the_profile_line(params, capsys, target):
    before = params.read_text()
    assert main(["--params", str(params), "profile", target]) == 0
    after = params.read_text()
    assert changed_lines(before, after) == [(f"profile: {load_config(PARAMS).profile}", f"profile: {target}")]
    assert after.count("\n#") == before.count("\n#")  # comments kept
    assert load_config(params).profile == target
    assert f"profile set to {target}" in capsys.readouterr().out


def test_profile_switch_back_restores_the_file(params):
    before = params.read_text()
    original = yaml.safe_load(before)["profile"]
    other = "smoke" if original != "smoke" else "cpu"
    assert main(["--params", str(params), "profile", other]) == 0
    assert main(["--params", str(params), "profile", original]) == 0
    assert params.read_text() == before


def test_unknown_profile_refused(params, capsys):
    before = params.read_text()
    assert main(["--params", str(params), "profile", "tpu"]) == 1
    assert params.read_text() == before
    err = capsys.readouterr().err
    assert "tagflow profile: error:" in err and "unknown profile 'tpu'" in err


def test_params_without_profile_line(params):
    params.write_text("\n".join(line for line in params.read_text().splitlines()
                                if not line.startswith("profile:")) + "\n")
    before = params.read_text()
    with pytest.raises(SystemExit, match="no top-level `profile:` line"):
        main(["--params", str(params), "profile", "smoke"])
    assert params.read_text() == before


def test_missing_params_file(tmp_path, capsys):
    assert main(["--params", str(tmp_path / "nope.yaml"), "profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "tagflow profile: error:" in err and "nope.yaml" in err


def test_thesaurus_step_on_malformed_dump(tmp_path, monkeypatch, capsys):
    """Runs the real Prefect flow (throw-away API server): the ThesaurusError raised in a
    task must reach the user as one line naming the file, and nothing is written."""
    from prefect.settings import PREFECT_HOME, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    dump = tmp_path / "data" / "broken-dump.ttl"
    dump.parent.mkdir()
    dump.write_text("@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n"
                    "<http://x/a> a skos:Concept ; skos:prefLabel \"unterminated@en .\n")
    raw = yaml.safe_load(PARAMS.read_text())
    raw["thesaurus"]["dump"] = str(dump)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))

    monkeypatch.chdir(tmp_path)  # the step writes artifacts/ and metrics/ relative to the project
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A throw-away API server and database (drained and stopped on exit, while the captured
    # streams are still open), so the test touches neither ~/.prefect nor a running server.
    with temporary_settings(updates={PREFECT_HOME: tmp_path / "prefect-home"}), prefect_test_harness():
        code = main(["--params", str(params), "thesaurus"])
    assert code == 1
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tagflow thesaurus:")]
    assert len(err_lines) == 1
    assert "error:" in err_lines[0] and str(dump) in err_lines[0] and "malformed turtle" in err_lines[0]
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "metrics").exists()
