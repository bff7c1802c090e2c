"""The interface every tagger backend implements.

A backend is built from its parameters, the thesaurus and (for backends that learn) a model
directory; `suggest` maps a batch of text chunks to scored concept URIs, one `ChunkSuggestions`
per chunk, in order. Backends never see whole documents: the tagger chunks long texts and
aggregates the chunks' suggestions, so free generation, constrained decoding, retrieval, lexical
matching, reranking and ensembles all plug in at the same point.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ...core.errors import ConfigError

FIT_INFO = "fit.json"  # the fit stage's summary, beside what it fitted


def parse_languages(spec: str, known: list[str], where: str) -> list[str]:
    """"en,fr" -> ["en", "fr"], each one a language the thesaurus has labels in."""
    langs = [lang.strip() for lang in spec.split(",") if lang.strip()]
    if not langs or any(lang not in known for lang in langs):
        raise ConfigError(f"{where}: {spec!r} is not a comma-separated subset of the thesaurus languages {known}")
    return langs


def load_train_set(spec: str, where: str) -> list[dict]:
    """Hand-indexed documents named by a backend's `train_set`: a folder of *.jsonl or one .jsonl
    file, every line with a `text` and gold `uris` (a library's own indexed records)."""
    from ...core.errors import DataError
    from ...core.io import read_jsonl  # here: the module is imported by everything, keep it light

    path = Path(spec)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path] if path.is_file() else []
    docs = [row for f in files for row in read_jsonl(f)]
    if not docs or any(not isinstance(d.get("text"), str) or not d.get("uris") for d in docs):
        raise DataError(f"{where}: {spec!r} must be a .jsonl file or a folder of them, "
                        f"every line with a `text` and gold `uris`")
    return docs


@dataclass
class Suggestion:
    uri: str
    score: float


@dataclass
class ChunkSuggestions:
    """What a backend proposes for one chunk, plus diagnostics the evaluation reports."""
    suggestions: list[Suggestion]
    raw: str = ""                 # the backend's raw answer (generative backends), for inspection
    well_formed: bool = True      # the raw answer had the expected format
    emitted: int = 0              # labels emitted (generative backends)
    unknown: list[str] = field(default_factory=list)   # emitted labels outside the thesaurus
    duplicates: int = 0           # labels emitted twice for the same concept


class TaggerBackend(ABC):
    name: ClassVar[str]
    DEFAULT_PARAMETERS: ClassVar[dict[str, Any]] = {}
    # Backends that learn (or index the thesaurus) before they can suggest: `fit` writes their
    # state into a directory, which is then their `model_dir` (and travels in the registered model).
    needs_fit: ClassVar[bool] = False

    def __init__(self, params: dict, thesaurus, model_dir: str | Path | None = None):
        self.params = self.resolve_params(params, f"backend {self.name}")
        self.thesaurus = thesaurus
        self.model_dir = Path(model_dir) if model_dir is not None else None

    @classmethod
    def resolve_params(cls, params: dict | None, where: str) -> dict:
        """DEFAULT_PARAMETERS overlaid with `params`; unknown keys and wrong types are errors."""
        params = dict(params or {})
        unknown = sorted(set(params) - set(cls.DEFAULT_PARAMETERS))
        if unknown:
            raise ConfigError(f"{where}: unknown parameter(s) {unknown}; known: "
                              f"{sorted(cls.DEFAULT_PARAMETERS)}")
        out = dict(cls.DEFAULT_PARAMETERS)
        for key, value in params.items():
            default = cls.DEFAULT_PARAMETERS[key]
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if default is not None and (not isinstance(value, type(default))
                                        or isinstance(value, bool) != isinstance(default, bool)):
                raise ConfigError(f"{where}.{key}: expected {type(default).__name__}, got {value!r}")
            out[key] = value
        return out

    @classmethod
    def fit(cls, params: dict, thesaurus, documents: list[dict], out_dir: Path) -> dict:
        """Learn from `documents` (dicts with "text" and gold "uris"; the synthetic training split)
        and write the state into `out_dir` (an empty directory the caller makes and later moves
        into place). Returns a summary for the logs and MLflow. Default: nothing to learn."""
        return {}

    @classmethod
    def model_info(cls, model_dir: str | Path) -> dict:
        """What the model card records about a model directory, read without loading it: by
        default the fit stage's summary (scorer, index, ensemble weights)."""
        import json

        path = Path(model_dir) / FIT_INFO
        return {"fit": json.loads(path.read_text())} if path.exists() else {}

    @abstractmethod
    def suggest(self, chunks: list[str]) -> list[ChunkSuggestions]:
        """One ChunkSuggestions per chunk, in order."""

    def describe(self) -> dict:
        """What the model card records about this backend (beyond its parameters)."""
        return {}

    def training_ids(self) -> frozenset[str]:
        """Ids of hand-indexed documents this backend learned from: the evaluation refuses a dev
        set that shares any (synthetic training documents are never evaluation documents)."""
        return frozenset()
