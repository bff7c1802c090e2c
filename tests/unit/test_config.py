"""params.yaml -> typed config: the real file's profiles, strictness on typos and types (backend
parameters included), and the params.yaml/dvc.yaml agreement DVC relies on."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from tagflow.config import PROFILES, Config, ConfigError, as_dict, load_config
from tagflow.tagger.config import TaggerConfig

ROOT = Path(__file__).resolve().parents[2]
PARAMS = ROOT / "params.yaml"
DVC_YAML = ROOT / "dvc.yaml"
RAW = yaml.safe_load(PARAMS.read_text())
FAMILIES = sorted(k for k in RAW if k not in ("profile", "profiles"))
NO_STAGE_READS = {"deploy"}   # Prefect schedules, read by `tagflow deploy` only: no overlay, no stage params


def write_params(tmp_path, edit) -> Path:
    raw = yaml.safe_load(PARAMS.read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ---- the real params.yaml --------------------------------------------------------------------

def test_smoke_overlay_applied():
    cfg = load_config(PARAMS, "smoke")
    t = cfg.tagger
    assert cfg.profile == "smoke"
    assert (t.synth.n_train, t.synth.n_val, t.synth.n_test) == (8, 2, 2)
    assert t.synth.target_words == 60
    assert t.synth.teacher.max_new_tokens == 96
    assert t.synth.teacher.kind == RAW["tagger"]["synth"]["teacher"]["kind"]  # nested keys merged
    assert t.contracts.min_text_words == 5
    assert t.contracts.min_keywords == RAW["tagger"]["contracts"]["min_keywords"]
    assert (t.sft.max_steps, t.sft.batch_size) == (3, 2)
    assert t.infer.backend_params() == {"max_new_tokens": 24, "batch_size": 8}  # merged per key
    assert t.registry.gate_target == 0.0 and isinstance(t.registry.gate_target, float)


def test_cpu_profile_is_the_base_sections(tmp_path):
    base_only = write_params(tmp_path, lambda raw: raw.pop("profiles"))
    cpu = as_dict(load_config(PARAMS, "cpu"))
    assert cpu == as_dict(load_config(base_only, "cpu"))
    assert cpu["tagger"]["synth"]["n_train"] == RAW["tagger"]["synth"]["n_train"]
    assert cpu["tagger"]["sft"]["base_model"] == RAW["tagger"]["sft"]["base_model"]


def test_gpu_overlay_applied():
    t = load_config(PARAMS, "gpu").tagger
    assert t.sft.base_model == "LiquidAI/LFM2.5-1.2B-Instruct"
    assert t.sft.load_in_4bit is True
    assert t.sft.epochs == 3.0 and isinstance(t.sft.epochs, float)
    assert (t.synth.teacher.kind, t.synth.teacher.model) == ("openai", "llama3.1:8b")
    assert t.synth.teacher.temperature == RAW["tagger"]["synth"]["teacher"]["temperature"]
    assert t.infer.backend_params() == {"max_new_tokens": 128, "batch_size": 16}
    assert t.registry.gate_target == 0.5


def test_profile_defaults_to_the_file(tmp_path):
    assert load_config(PARAMS).profile == RAW["profile"]
    path = write_params(tmp_path, lambda raw: raw.update(profile="smoke"))
    assert load_config(path).tagger.synth.n_train == 8
    assert load_config(path, "gpu").profile == "gpu"  # the argument wins over the file


def test_every_section_of_params_yaml_is_a_config_field():
    names = {f.name for f in dataclasses.fields(Config)} - {"profile"}
    assert set(FAMILIES) == names
    steps = {f.name for f in dataclasses.fields(TaggerConfig)}
    assert set(RAW["tagger"]) == steps


def test_the_prompt_is_the_reference_prompt():
    assert load_config(PARAMS).tagger.synth.prompt == (
        "Extract UNESCO Thesaurus keywords from this text:\n\n{text}")


# ---- strictness ------------------------------------------------------------------------------

def test_unknown_key(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["tagger"]["synth"].update(n_trian=5))
    with pytest.raises(ConfigError, match=r"tagger\.synth: unknown key\(s\) \['n_trian'\]"):
        load_config(path)


def test_unknown_key_in_overlay(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["profiles"]["smoke"]["tagger"]["infer"].update(top_k=3))
    load_config(path, "cpu")  # only the active overlay is merged
    with pytest.raises(ConfigError, match=r"tagger\.infer: unknown key\(s\) \['top_k'\]"):
        load_config(path, "smoke")


def test_unknown_nested_key(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["tagger"]["synth"]["teacher"].update(temprature=0.1))
    with pytest.raises(ConfigError, match=r"synth\.teacher: unknown key\(s\) \['temprature'\]"):
        load_config(path)


@pytest.mark.parametrize("section, key, value, expected", [
    ("tagger.synth", "n_train", "many", "int"),
    ("tagger.synth", "n_train", 1.5, "int"),
    ("tagger.registry", "gate_target", "high", "float"),
    ("tagger.sft", "load_in_4bit", "yes", "bool"),
    ("tagger.infer", "backends", ["llm"], "dict"),
    ("thesaurus", "url", 42, "str"),
])
def test_wrong_type(tmp_path, section, key, value, expected):
    def edit(raw):
        node = raw
        for part in section.split("."):
            node = node[part]
        node[key] = value
    with pytest.raises(ConfigError, match=rf"{section}\.{key}: expected {expected}, got"):
        load_config(write_params(tmp_path, edit))


def test_unknown_backend(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["tagger"]["infer"].update(backend="telepathy"))
    with pytest.raises(ConfigError, match=r"unknown tagger backend 'telepathy'; known: \['embedding', 'ensemble', 'lexical', 'llm', 'rerank', 'route'\]"):
        load_config(path)


def test_unknown_backend_parameter(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["tagger"]["infer"]["backends"]["llm"].update(beams=4))
    with pytest.raises(ConfigError, match=r"backends\.llm: unknown parameter\(s\) \['beams'\]"):
        load_config(path)


def test_backend_parameter_of_wrong_type(tmp_path):
    path = write_params(tmp_path, lambda raw: raw["tagger"]["infer"]["backends"]["llm"].update(batch_size="8"))
    with pytest.raises(ConfigError, match=r"backends\.llm\.batch_size: expected int, got '8'"):
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
    path = write_params(tmp_path, lambda raw: raw["tagger"]["synth"].update(n_train=True))
    with pytest.raises(ConfigError, match="n_train"):
        load_config(path)


def test_unknown_profile():
    with pytest.raises(ConfigError, match=r"unknown profile 'tpu'; defined: \['cpu', 'gpu', 'smoke'\]"):
        load_config(PARAMS, "tpu")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="no such parameters file"):
        load_config(tmp_path / "params.yaml")


def test_invalid_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile: cpu\ntagger: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


# ---- params.yaml <-> dvc.yaml ----------------------------------------------------------------

def test_profiles_are_the_known_ones():
    assert sorted(RAW["profiles"]) == sorted(PROFILES)
    assert RAW["profile"] in PROFILES


def step_sections(raw: dict) -> list[str]:
    """`thesaurus`, `tagger.synth`, `edu.data`, ...: the units a stage lists, with an overlay each.
    A family whose config groups one dataclass per step (tagger, edu, ...) has a unit per step."""
    from typing import get_type_hints

    out = []
    families = get_type_hints(Config)
    for family in sorted(set(FAMILIES) - NO_STAGE_READS):
        assert family in families
        steps = [name for name, kind in get_type_hints(families[family]).items()
                 if dataclasses.is_dataclass(kind)]
        out += [f"{family}.{step}" for step in steps] if steps else [family]
    return sorted(out)


def lookup(raw: dict, dotted: str):
    node = raw
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(dotted)
        node = node[part]
    return node


@pytest.mark.parametrize("profile", PROFILES)
def test_every_overlay_names_every_step_section(profile):
    # dvc.yaml lists profiles.${profile}.<section>; DVC refuses a listed key that is absent
    for section in step_sections(RAW):
        assert isinstance(lookup(RAW["profiles"][profile], section), dict), (profile, section)


def test_dvc_stages_list_the_active_overlay_of_each_section_they_read():
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    sections = step_sections(RAW)
    assert stages
    for name, stage in stages.items():
        params = [p for p in stage.get("params", []) if p != "profile"]
        overlays = [p for p in params if p.startswith("profiles.")]
        bases = [p for p in params if not p.startswith("profiles.")]
        assert bases, f"stage {name} lists no parameters"
        for overlay in overlays:  # only the active profile's, never a fixed one
            assert overlay.startswith("profiles.${profile}."), f"stage {name}: {overlay}"
        for key in bases:
            section = next((s for s in sections if key == s or key.startswith(s + ".")), None)
            assert section, f"stage {name} lists {key}, outside every section"
            assert f"profiles.${{profile}}.{section}" in overlays, (
                f"stage {name} lists {key} but not the active overlay of {section}")
        for profile in PROFILES:  # every listed key exists under every profile, as DVC requires
            for key in params:
                lookup(RAW, key.replace("${profile}", profile))
