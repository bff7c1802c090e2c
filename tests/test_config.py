"""params.yaml -> typed config: the real file's profiles, strictness on typos and types, and the
params.yaml/dvc.yaml agreement DVC relies on (every stage sees every overlay of its sections)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from tagflow.config import PROFILES, Config, ConfigError, as_dict, load_config

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
DVC_YAML = ROOT / "dvc.yaml"
RAW = yaml.safe_load(PARAMS.read_text())
SECTIONS = sorted(k for k in RAW if k not in ("profile", "profiles"))


def write_params(tmp_path, edit) -> Path:
    raw = yaml.safe_load(PARAMS.read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ---- the real params.yaml --------------------------------------------------------------------

def test_smoke_overlay_applied():
    cfg = load_config(PARAMS, "smoke")
    assert cfg.profile == "smoke"
    assert (cfg.synth.n_train, cfg.synth.n_val, cfg.synth.n_test) == (8, 2, 2)
    assert cfg.synth.target_words == 60
    assert cfg.synth.teacher.max_new_tokens == 96
    assert cfg.synth.teacher.kind == RAW["synth"]["teacher"]["kind"]  # nested keys merged, not replaced
    assert cfg.contracts.min_text_words == 5
    assert cfg.contracts.min_keywords == RAW["contracts"]["min_keywords"]
    assert (cfg.train_sft.max_steps, cfg.train_sft.batch_size) == (3, 2)
    assert cfg.tagger.max_new_tokens == 24
    assert cfg.registry.gate_target == 0.0 and isinstance(cfg.registry.gate_target, float)


def test_cpu_profile_is_the_base_sections(tmp_path):
    base_only = write_params(tmp_path, lambda raw: raw.pop("profiles"))
    cpu = as_dict(load_config(PARAMS, "cpu"))
    base = as_dict(load_config(base_only, "cpu"))
    assert cpu == base
    assert cpu["synth"]["n_train"] == RAW["synth"]["n_train"]
    assert cpu["train_sft"]["base_model"] == RAW["train_sft"]["base_model"]


def test_gpu_overlay_applied():
    cfg = load_config(PARAMS, "gpu")
    assert cfg.train_sft.base_model == "LiquidAI/LFM2.5-1.2B-Instruct"
    assert cfg.train_sft.load_in_4bit is True
    assert cfg.train_sft.epochs == 3.0 and isinstance(cfg.train_sft.epochs, float)
    assert (cfg.synth.teacher.kind, cfg.synth.teacher.model) == ("openai", "llama3.1:8b")
    assert cfg.synth.teacher.temperature == RAW["synth"]["teacher"]["temperature"]
    assert (cfg.tagger.max_new_tokens, cfg.tagger.batch_size) == (128, 16)
    assert cfg.registry.gate_target == 0.5


def test_profile_defaults_to_the_file(tmp_path):
    assert load_config(PARAMS).profile == RAW["profile"]
    path = write_params(tmp_path, lambda raw: raw.update(profile="smoke"))
    assert load_config(path).synth.n_train == 8
    assert load_config(path, "gpu").profile == "gpu"  # the argument wins over the file


def test_every_value_in_params_yaml_is_read():
    """Each section of params.yaml maps onto the dataclass with the same name and keys."""
    names = {f.name for f in dataclasses.fields(Config)} - {"profile"}
    assert set(SECTIONS) == names


# ---- strictness ------------------------------------------------------------------------------

def test_unknown_key(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["synth"].update(n_trian=5))
    with pytest.raises(ConfigError, match=r"synth: unknown key\(s\) \['n_trian'\]"):
        load_config(path)


def test_unknown_key_in_overlay(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["profiles"]["smoke"]["tagger"].update(top_k=3))
    load_config(path, "cpu")  # only the active overlay is merged
    with pytest.raises(ConfigError, match=r"tagger: unknown key\(s\) \['top_k'\]"):
        load_config(path, "smoke")


def test_unknown_nested_key(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["synth"]["teacher"].update(temprature=0.1))
    with pytest.raises(ConfigError, match=r"synth\.teacher: unknown key\(s\) \['temprature'\]"):
        load_config(path)


@pytest.mark.parametrize("section, key, value, expected", [
    ("synth", "n_train", "many", "int"),
    ("synth", "n_train", 1.5, "int"),
    ("registry", "gate_target", "high", "float"),
    ("train_sft", "load_in_4bit", "yes", "bool"),
    ("thesaurus", "url", 42, "str"),
])
def test_wrong_type(tmp_path, section, key, value, expected):
    path = write_params(tmp_path, lambda raw: raw[section].update({key: value}))
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: expected {expected}, got"):
        load_config(path)


def test_section_must_be_a_mapping(tmp_path):
    def edit(raw):
        raw.update(tagger=[1, 2])
        raw.pop("profiles")
    with pytest.raises(ConfigError, match="tagger.*mapping"):
        load_config(write_params(tmp_path, edit))


def test_section_must_be_a_mapping_with_overlays(tmp_path):
    path = write_params(tmp_path, lambda raw: raw.update(tagger=[1, 2]))
    with pytest.raises(ConfigError, match="tagger.*mapping"):
        load_config(path, "cpu")


def test_list_field_refuses_a_string(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["thesaurus"].update(languages="en"))
    with pytest.raises(ConfigError, match="languages"):
        load_config(path)


def test_int_field_refuses_a_bool(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["synth"].update(n_train=True))
    with pytest.raises(ConfigError, match="n_train"):
        load_config(path)


def test_unknown_profile():
    with pytest.raises(ConfigError, match=r"unknown profile 'tpu'; defined: \['cpu', 'gpu', 'smoke'\]"):
        load_config(PARAMS, "tpu")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such parameters file"):
        load_config(tmp_path / "params.yaml")


# ---- params.yaml <-> dvc.yaml ----------------------------------------------------------------

def test_profiles_are_the_known_ones():
    assert sorted(RAW["profiles"]) == sorted(PROFILES)
    assert RAW["profile"] in PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_every_overlay_names_every_section(profile):
    # dvc.yaml lists profiles.<p>.<section>; DVC refuses a listed key that is absent
    assert sorted(RAW["profiles"][profile]) == SECTIONS
    assert all(isinstance(v, dict) for v in RAW["profiles"][profile].values())


def lookup(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


def test_dvc_stages_list_profile_and_every_overlay_of_their_sections():
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    assert stages
    for name, stage in stages.items():
        params = stage.get("params", [])
        assert "profile" in params, f"stage {name} does not list `profile`"
        bases = [p for p in params if isinstance(p, str) and p != "profile" and not p.startswith("profiles.")]
        assert bases, f"stage {name} lists no params section"
        for section in bases:
            assert section in SECTIONS, f"stage {name} lists unknown section {section}"
            for profile in PROFILES:
                assert f"profiles.{profile}.{section}" in params, (
                    f"stage {name} lists {section} but not profiles.{profile}.{section}")
        for p in params:
            lookup(RAW, p)  # every listed key exists, as DVC requires
        overlays = {p.split(".")[2] for p in params if p.startswith("profiles.")}
        assert overlays <= set(bases), f"stage {name} lists overlays of sections it does not list"
