"""The tagger backend registry: names, lazy imports, parameters over DEFAULT_PARAMETERS."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tagflow.core.errors import ConfigError
from tagflow.tagger import backends
from tagflow.tagger.backends.base import ChunkSuggestions, Suggestion, TaggerBackend
from tagflow.tagger.config import InferConfig


def test_llm_is_registered():
    assert "llm" in backends.names()
    cls = backends.get_backend("llm")
    assert issubclass(cls, TaggerBackend) and cls.name == "llm"
    assert cls.DEFAULT_PARAMETERS == {"max_new_tokens": 96, "batch_size": 8, "decoding": "free",
                                      "mapping": "exact", "min_similarity": 0.75, "max_labels": 10,
                                      "label_languages": "en", "engine": "generate"}


def test_unknown_backend():
    with pytest.raises(ConfigError, match=r"unknown tagger backend 'nope'; known: \['embedding', 'ensemble', 'lexical', 'llm', 'rerank', 'route'\]"):
        backends.get_backend("nope")


def test_backends_import_lazily():
    """Importing the registry (or the config) loads no backend module and no torch."""
    code = ("import sys, tagflow.config, tagflow.tagger.backends as b; "
            "print('tagflow.tagger.backends.llm' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_params_overlay_the_defaults():
    cls = backends.get_backend("llm")
    assert cls.resolve_params({"batch_size": 2}, "x") == {**cls.DEFAULT_PARAMETERS, "batch_size": 2}
    with pytest.raises(ConfigError, match=r"x: unknown parameter\(s\) \['beams'\]"):
        cls.resolve_params({"beams": 2}, "x")
    with pytest.raises(ConfigError, match=r"x\.batch_size: expected int, got True"):
        cls.resolve_params({"batch_size": True}, "x")


def test_check_params_refuses_a_misspelled_backend_block():
    cfg = InferConfig(backend="llm", backends={"llm": {}, "lexcial": {}})
    with pytest.raises(ConfigError, match="unknown tagger backend 'lexcial'"):
        backends.check_params(cfg)


def test_variants_configure_a_backend_twice_and_are_checked_alike():
    assert backends.get_backend("embedding@multilingual") is backends.get_backend("embedding")
    assert backends.base_name("embedding@multilingual") == "embedding"
    cfg = InferConfig(backend="llm@constrained", backends={
        "llm@constrained": {"decoding": "constrained"}, "embedding@x": {"encoder": "e"}})
    assert backends.check_params(cfg)["decoding"] == "constrained"
    bad = InferConfig(backend="llm", backends={"llm": {}, "embedding@x": {"encodr": "e"}})
    with pytest.raises(ConfigError, match=r"backends\.embedding@x: unknown parameter\(s\) \['encodr'\]"):
        backends.check_params(bad)
    with pytest.raises(ConfigError, match="unknown tagger backend 'lexcial@fr'"):
        backends.get_backend("lexcial@fr")


def test_the_llm_and_its_variants_share_the_adapter_directory():
    from tagflow.tagger import paths
    assert paths.model_dir("llm") == paths.model_dir("llm@constrained") == paths.ADAPTER_DIR
    assert paths.model_dir("route") == paths.model_dir("embedding@x") == paths.BACKEND_DIR


class Keyword(TaggerBackend):
    """A minimal backend: the interface is small enough to implement in a few lines."""
    name = "keyword"
    DEFAULT_PARAMETERS = {"score": 0.5}

    def suggest(self, chunks):
        return [ChunkSuggestions([Suggestion(u, self.params["score"]) for u, lab in
                                  self.thesaurus.label.items() if lab.lower() in c.lower()])
                for c in chunks]


def test_a_new_backend_plugs_into_the_tagger(tiny_thesaurus):
    from tagflow.tagger.pipeline import Tagger

    tagger = Tagger(Keyword({"score": 0.8}, tiny_thesaurus), tiny_thesaurus, InferConfig(top_n=3))
    result = tagger.tag("Museums keep the memory of teachers. Museums open on Sunday.")
    # ties keep the order the backend suggested them in (its scan of the concept table)
    assert [(c.label, c.score) for c in result.concepts] == [("Teachers", 0.8), ("Museums", 0.8)]
    assert result.well_formed and result.raw_outputs == [""]
