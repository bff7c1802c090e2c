"""The registry decision lines a retrain shows in the Prefect UI, for every report shape the
register stages write, and the deployment specs read from params.yaml."""
from __future__ import annotations

import pytest

from tagflow.core.errors import ConfigError, DataError
from tagflow.deploy import DeployConfig, specs
from tagflow.retrain import FAMILIES, decision_lines, family, markdown, read_report


def test_a_skipped_preference_run_reads_as_skipped():
    assert decision_lines({"skipped": "no SFT+IPO model (ipo.max_steps is 0)"}, "r.json") == [
        "skipped: no SFT+IPO model (ipo.max_steps is 0)"]


def test_a_decision_without_its_keys_is_refused_naming_the_file_and_setup():
    with pytest.raises(DataError, match=r"r\.json \[en\]: registry decision lacks \['promoted', 'reasons'\]"):
        decision_lines({"decisions": {"en": {"version": "2"}}}, "r.json")


def test_a_report_that_is_not_json_or_not_an_object_is_a_data_error(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    (tmp_path / "b.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="a.json: not valid JSON"):
        read_report(tmp_path / "a.json")
    with pytest.raises(DataError, match="b.json: expected a JSON object, got list"):
        read_report(tmp_path / "b.json")


def test_markdown_lists_each_report_with_its_lines():
    text = markdown("tagger", {"reports/registry.json": ["rejected unesco-tagger v4: f1_doc 0.12 < target 0.15"]})
    assert text.splitlines()[0] == "# Registry decision: tagger"
    assert "`reports/registry.json`" in text and "- rejected unesco-tagger v4: f1_doc 0.12 < target 0.15" in text


def test_every_scheduled_family_is_a_retrain_family_and_all_covers_their_reports():
    scheduled = [s.family for s in specs(DeployConfig())]
    assert sorted(scheduled) == sorted(set(FAMILIES) - {"all"})
    assert set(family("all").reports) == {r for name in scheduled for r in family(name).reports}
    assert family("all").stages == ()


def test_deploying_an_unknown_family_is_refused():
    with pytest.raises(ConfigError, match=r"no schedule for \['topic'\]"):
        specs(DeployConfig(), ["topic"])
    assert [s.family for s in specs(DeployConfig(), ["edu"])] == ["edu"]
