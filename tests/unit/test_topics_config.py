"""The `topics` section of params.yaml: its profiles and the names the types cannot check."""
from __future__ import annotations

import pytest

from tagflow.config import ConfigError, load_config
from tests.unit.test_config import PARAMS, write_params


def test_topics_profiles():
    smoke, cpu, gpu = (load_config(PARAMS, p).topics for p in ("smoke", "cpu", "gpu"))
    assert smoke.data.max_train_docs > 0 and cpu.data.max_train_docs == 0
    assert smoke.train.transformer.max_steps > 0 and smoke.registry.gate_target == 0.0
    assert cpu.train.candidates == ["svm", "transformer"]
    assert cpu.train.transformer.backbone == "embedded:all-minilm-l6-v2"
    assert (gpu.train.transformer.backbone, gpu.train.transformer.load_in_4bit) == ("meta-llama/Llama-3.2-1B", True)
    assert gpu.train.transformer.lora_r == cpu.train.transformer.lora_r  # nested keys merged
    assert cpu.registry.guard_metrics == ["validation/macro_f1_tuned"]
    assert cpu.train.svm.threshold_folds == 5 and cpu.train.transformer.threshold_folds == 0


@pytest.mark.parametrize("key, value, message", [
    ("test_split", "heldout", "test_split: 'heldout'; expected none | modapte"),
    ("label_set", "top5", "label_set: 'top5'"),
    ("val_fraction", 1.5, "val_fraction: 1.5 must be in"),
])
def test_topics_names_checked(tmp_path, key, value, message):
    path = write_params(tmp_path, lambda raw: raw["topics"]["data"].update({key: value}))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_topics_unknown_candidate(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["topics"]["train"].update(candidates=["svm", "bert"]))
    with pytest.raises(ConfigError, match=r"candidates: \['svm', 'bert'\]; choose from"):
        load_config(path)


def test_topics_threshold_folds_checked(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["topics"]["train"]["svm"].update(threshold_folds=1))
    with pytest.raises(ConfigError, match=r"svm.threshold_folds: 1; expected 0 .* or at least 2"):
        load_config(path)
