"""`tagflow` commands through cli.main(): every command has --help, profile switching edits one
line of params.yaml, a user's error (TagflowError) becomes one line and exit code 2, and a bug
keeps its traceback."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tagflow.cli import cli, main
from tagflow.config import load_config

ROOT = Path(__file__).resolve().parents[2]
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
    assert main(["--params", str(params), "profile", "tpu"]) == 2
    assert params.read_text() == before
    err = capsys.readouterr().err
    assert "'tpu' is not one of 'smoke', 'cpu', 'gpu'" in err and "Traceback" not in err


def test_params_without_profile_line(params, capsys):
    params.write_text("\n".join(line for line in params.read_text().splitlines()
                                if not line.startswith("profile:")) + "\n")
    before = params.read_text()
    assert main(["--params", str(params), "profile", "smoke"]) == 2
    assert params.read_text() == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"tagflow profile: error: {params}: no top-level `profile:` line to change (details: ")


def test_missing_params_file(tmp_path, capsys):
    assert main(["--params", str(tmp_path / "nope.yaml"), "profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "tagflow profile: error:" in err and "nope.yaml" in err


def commands(group, path=()):
    for name, command in sorted(group.commands.items()):
        yield path + (name,)
        if hasattr(command, "commands"):
            yield from commands(command, path + (name,))


def test_every_command_has_help(capsys):
    from tagflow.cli import _register_groups

    _register_groups()
    paths = list(commands(cli))
    assert {("thesaurus", "build"), ("tagger", "train"), ("tagger", "tag"), ("promote",),
            ("rollback",), ("models",), ("profile",)} <= set(paths)
    for path in paths:
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert out.startswith(f"Usage: tagflow {' '.join(path)}") and len(out.splitlines()) > 3


def test_tagger_backends_lists_the_registry(capsys):
    assert main(["tagger", "backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["embedding", "ensemble", "lexical", "llm", "rerank", "route"]
    assert 'llm: {"max_new_tokens": 96, "batch_size": 8, "decoding": "free", "mapping": "exact", "min_similarity": 0.75, "max_labels": 10, "label_languages": "en", "engine": "generate"}' in lines


def logged(err: str) -> str:
    """The traceback file a one-line message names."""
    import re
    match = re.search(r"(?:details|full traceback): (\S+?\.log)", err)
    assert match, err
    return Path(match.group(1)).read_text()


def test_a_bug_is_one_line_with_its_traceback_in_a_log_file(monkeypatch, tmp_path, capsys):
    from tagflow.tagger import backends

    def broken():
        raise KeyError("internal")
    monkeypatch.setattr(backends, "names", broken)
    monkeypatch.setenv("TAGFLOW_LOG_DIR", str(tmp_path / "logs"))
    assert main(["tagger", "backends"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tagflow tagger backends: unexpected KeyError: 'internal'")
    text = logged(err)
    assert text.startswith("tagflow tagger backends") and "Traceback" in text and "def broken" not in err


def test_tag_names_a_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAGFLOW_LOG_DIR", str(tmp_path / "logs"))
    assert main(["tagger", "tag", str(tmp_path / "missing.txt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tagflow tagger tag: error: {tmp_path / 'missing.txt'}: no such file (details: ")
    assert "DataError" in logged(err)


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
        code = main(["--params", str(params), "thesaurus", "build"])
    assert code == 2
    err_lines = [line for line in capsys.readouterr().err.splitlines()
                 if line.startswith("tagflow thesaurus build:")]
    assert len(err_lines) == 1
    assert "error:" in err_lines[0] and str(dump) in err_lines[0] and "malformed turtle" in err_lines[0]
    assert not (tmp_path / "artifacts").exists() and not (tmp_path / "metrics").exists()
