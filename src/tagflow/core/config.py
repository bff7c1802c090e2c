"""params.yaml -> typed config objects: the generic machinery.

Config flows one way: the YAML file is read once, the active profile's overlay is merged over
the base sections, and the result is built into dataclasses (`tagflow.config.Config` assembles
each family's sections). Unknown keys and wrong types are errors: a typo in params.yaml must not
silently fall back to a default. Each family declares its sections with `param(default, help)`.
"""
from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .errors import ConfigError

PROFILES = ("smoke", "cpu", "gpu")


def param(default: Any, help: str) -> Any:
    """A dataclass field with a help text (shown by `tagflow params`-style tooling and docs)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


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


def build(cls: type, data: dict, where: str) -> Any:
    """Build dataclass `cls` from a mapping, recursively, refusing unknown keys and wrong types."""
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
        if isinstance(kind, types.GenericAlias) or typing.get_origin(kind) is not None:
            kind = typing.get_origin(kind)  # dict[str, dict] -> dict
        if dataclasses.is_dataclass(kind):
            kwargs[name] = build(kind, value, f"{where}.{name}")
        elif kind is float and isinstance(value, int) and not isinstance(value, bool):
            kwargs[name] = float(value)
        elif kind in (int, float, str, bool, list, dict) and (
                not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
            raise ConfigError(f"{where}.{name}: expected {kind.__name__}, got {value!r}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def read_params(path: str | Path, profile: str | None = None) -> dict:
    """The merged mapping: base sections with the profile's overlay on top, plus `profile`.

    There is deliberately no environment override: DVC must see every value that shapes a
    stage, so switching profiles is an edit of params.yaml (`tagflow profile smoke`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such parameters file (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections")
    overlays = raw.pop("profiles", {}) or {}
    profile = profile or raw.get("profile", "cpu")
    if profile not in overlays and profile != "cpu":
        raise ConfigError(f"{path}: unknown profile {profile!r}; defined: {sorted(overlays) or ['cpu']}")
    merged = deep_merge(raw, overlays.get(profile) or {})
    merged["profile"] = profile
    return merged


def as_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)
