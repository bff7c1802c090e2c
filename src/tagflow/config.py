"""params.yaml -> typed config objects.

Config flows one way: the YAML file is read once, the active profile's overlay is merged over
the base sections, and each pipeline step receives only its own dataclass. Unknown keys are an
error (a typo in params.yaml must not silently fall back to a default).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

PROFILES = ("smoke", "cpu", "gpu")


def _f(default: Any, help: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class ThesaurusConfig:
    url: str = _f("https://vocabularies.unesco.org/exports/thesaurus/latest/unesco-thesaurus.ttl",
                  "official location of the SKOS Turtle dump")
    dump: str = _f("data/unesco-thesaurus/unesco-thesaurus.ttl", "where the dump lives (tracked by data.dvc)")
    languages: list = _f(["en", "fr", "es", "ar", "ru"], "label languages kept in the concept table")


@dataclass
class TeacherConfig:
    kind: str = _f("transformers", "transformers (local model) or openai (OpenAI-compatible endpoint)")
    model: str = _f("embedded:smollm2-135m-instruct", "model id: embedded:<name>, hub name or local dir")
    base_url: str = _f("http://127.0.0.1:11434/v1", "OpenAI-compatible base URL (kind=openai)")
    temperature: float = _f(0.7, "sampling temperature")
    max_new_tokens: int = _f(360, "token budget per document")
    batch_size: int = _f(8, "documents generated together")


@dataclass
class SynthConfig:
    seed: int = _f(13, "seed for concept sampling and generation")
    n_train: int = _f(480, "training examples")
    n_val: int = _f(60, "validation examples")
    n_test: int = _f(60, "test examples")
    min_concepts: int = _f(3, "fewest concepts per document")
    max_concepts: int = _f(8, "most concepts per document")
    target_words: int = _f(270, "document length asked of the teacher")
    teacher: TeacherConfig = field(default_factory=TeacherConfig)


@dataclass
class ContractsConfig:
    min_keywords: int = _f(3, "fewest gold keywords per example")
    max_keywords: int = _f(8, "most gold keywords per example")
    min_text_words: int = _f(40, "shortest acceptable document, in words")


@dataclass
class TrainSFTConfig:
    base_model: str = _f("embedded:smollm2-135m-instruct", "base model: embedded:<name>, hub name or dir")
    seed: int = _f(13, "training seed")
    epochs: float = _f(1, "passes over the training split")
    max_steps: int = _f(-1, "if > 0, stop after this many optimizer steps")
    learning_rate: float = _f(2e-4, "LoRA learning rate")
    batch_size: int = _f(4, "per-device batch size")
    grad_accum: int = _f(1, "gradient accumulation steps")
    max_length: int = _f(768, "longest tokenized example")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA alpha")
    lora_dropout: float = _f(0.05, "LoRA dropout")
    load_in_4bit: bool = _f(False, "QLoRA: 4-bit base weights (CUDA + bitsandbytes only)")


@dataclass
class TaggerConfig:
    chunk_chars: int = _f(3000, "characters per chunk for long documents")
    chunk_overlap: int = _f(500, "overlap between consecutive chunks")
    top_n: int = _f(10, "keywords returned per document")
    max_new_tokens: int = _f(96, "generation budget per chunk")
    batch_size: int = _f(8, "chunks generated together")


@dataclass
class EvaluateConfig:
    split: str = _f("test", "split to evaluate on")


@dataclass
class RegistryConfig:
    model_name: str = _f("unesco-tagger", "registered model name in MLflow")
    experiment: str = _f("unesco-tagger", "MLflow experiment")
    gate_metric: str = _f("f1_doc", "metric the promotion gate reads")
    gate_target: float = _f(0.30, "champion only at or above this value")


@dataclass
class Config:
    profile: str = "cpu"
    thesaurus: ThesaurusConfig = field(default_factory=ThesaurusConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    train_sft: TrainSFTConfig = field(default_factory=TrainSFTConfig)
    tagger: TaggerConfig = field(default_factory=TaggerConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)


class ConfigError(ValueError):
    pass


def deep_merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (overlay or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        elif isinstance(value, dict) and key in out:
            raise ConfigError(f"section {key!r} must be a mapping, got {out[key]!r}")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _build(cls: type, data: dict, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for name, value in data.items():
        kind = hints[name]
        if dataclasses.is_dataclass(kind):
            kwargs[name] = _build(kind, value, f"{where}.{name}")
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            kwargs[name] = float(value)
        elif kind in (int, float, str, bool, list) and (
                not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
            raise ConfigError(f"{where}.{name}: expected {kind.__name__}, got {value!r}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def load_config(path: str | Path = "params.yaml", profile: str | None = None) -> Config:
    """Read params.yaml and apply the profile overlay (argument, else the file's `profile`).

    There is deliberately no environment override: DVC must see every value that shapes a
    stage, so switching profiles is an edit of params.yaml (`tagflow profile smoke`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such parameters file (run from the project root)")
    raw = yaml.safe_load(path.read_text()) or {}
    overlays = raw.pop("profiles", {}) or {}
    profile = profile or raw.get("profile", "cpu")
    if profile not in overlays and profile != "cpu":
        raise ConfigError(f"{path}: unknown profile {profile!r}; defined: {sorted(overlays) or ['cpu']}")
    merged = deep_merge(raw, overlays.get(profile) or {})
    merged["profile"] = profile
    return _build(Config, merged, str(path))


def as_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)
