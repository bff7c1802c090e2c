"""Telemetry stays off however tagflow is started: a plain `dvc repro` with the venv active runs
`tagflow` without the Makefile's environment."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tagflow.core.log import TELEMETRY_OFF


def test_every_command_turns_telemetry_off_unless_the_site_opted_in():
    code = ("import json, os; from tagflow.core.log import configure; configure(); "
            f"print(json.dumps({{k: os.environ.get(k) for k in {sorted(TELEMETRY_OFF)!r}}}))")
    env = {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == TELEMETRY_OFF
    env["GX_ANALYTICS_ENABLED"] = "true"            # an explicit choice is kept
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["GX_ANALYTICS_ENABLED"] == "true"
