"""Tagger backends: one module each, found by name, imported only when asked for (Annif's
`annif/backend/` registry). A backend turns a batch of text chunks into scored concept URIs
(`base.TaggerBackend.suggest`); chunking, aggregation across chunks, hierarchy refinement and
top-N are the tagger's (`tagger.pipeline`), so every backend gets them alike.

Adding a backend: a module here with a `TaggerBackend` subclass (name, DEFAULT_PARAMETERS,
suggest; `fit` if it learns from the synthetic data), and one line in `_BACKENDS`.

A backend can be configured more than once under variant names, `<backend>@<variant>` (say
`embedding@multilingual` with another encoder): each variant has its own parameter block, and
composite backends (ensemble, route) name variants as members.
"""
from __future__ import annotations

import importlib

from ...core.errors import ConfigError

# name -> "module:Class", relative to this package. Imports are lazy: torch, encoders and the
# like load only for the backend in use.
_BACKENDS = {
    "llm": "llm:LLMBackend",              # free generation by the SFT model (the reference)
    "lexical": "lexical:LexicalBackend",  # label matching in every language + a learned scorer
    "embedding": "embedding:EmbeddingBackend",  # sentence encoder over concept descriptions
    "ensemble": "ensemble:EnsembleBackend",  # weighted fusion of other backends
    "route": "route:RouteBackend",        # each chunk to the member configured for its language
    "rerank": "rerank:RerankBackend",     # retrieval candidates reordered by a learned scorer
}


def names() -> list[str]:
    return sorted(_BACKENDS)


def base_name(name: str) -> str:
    """`embedding@multilingual` -> `embedding`: the backend a variant name configures."""
    return name.split("@", 1)[0]


def get_backend(name: str) -> type:
    """The backend class registered under `name` (or the backend of the variant `name`)."""
    try:
        module, cls = _BACKENDS[base_name(name)].split(":")
    except KeyError:
        raise ConfigError(f"unknown tagger backend {name!r}; known: {names()}") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def check_params(infer, where: str = "tagger.infer") -> dict:
    """The selected backend's parameters over its defaults; unknown keys and wrong types refused."""
    backend = get_backend(infer.backend)
    if not isinstance(infer.backends, dict):
        raise ConfigError(f"{where}.backends: expected a mapping of backend name -> parameters")
    for name, params in infer.backends.items():  # every block, not only the selected backend's:
        get_backend(name).resolve_params(params, f"{where}.backends.{name}")  # a typo waits for no switch
    return backend.resolve_params(infer.backend_params(), f"{where}.backends.{infer.backend}")


def make_backend(infer, thesaurus, model_dir):
    """The configured backend, built with its parameters (a composite one with its members')."""
    cls = get_backend(infer.backend)
    if getattr(cls, "composite", False):
        return cls(infer.backend_params(), thesaurus, model_dir, member_params=infer.backends)
    return cls(infer.backend_params(), thesaurus, model_dir)


def fit_backend(infer, thesaurus, train: list[dict], validation: list[dict], out_dir) -> dict:
    """Fit the configured backend into out_dir (nothing to do for backends that do not learn)."""
    cls = get_backend(infer.backend)
    if getattr(cls, "composite", False):
        return cls.fit(infer.backend_params(), thesaurus, train, out_dir,
                       member_params=infer.backends, validation=validation)
    return cls.fit(infer.backend_params(), thesaurus, train, out_dir)


def fit_members(names: list[str], member_params: dict | None, thesaurus, documents: list[dict],
                out_dir, validation: list[dict] | None = None) -> tuple[dict, dict]:
    """Fit a composite backend's members into out_dir/<name> (ensemble, route): returns
    (each member's resolved parameters, each member's fit summary)."""
    from pathlib import Path

    resolved = {n: get_backend(n).resolve_params((member_params or {}).get(n), n) for n in names}
    summaries = {}
    for name in names:
        kind, where = get_backend(name), Path(out_dir) / name
        where.mkdir()
        if getattr(kind, "composite", False):
            summaries[name] = kind.fit(resolved[name], thesaurus, documents, where,
                                       member_params=member_params, validation=validation)
        else:
            summaries[name] = kind.fit(resolved[name], thesaurus, documents, where)
    return resolved, summaries
