"""Nested parameters flattened into MLflow names: dotted, lists as JSON, and characters MLflow
refuses in a name (the `@` of a backend variant) replaced."""
from tagflow.core.tracking import flatten


def test_flatten_makes_names_mlflow_accepts():
    import re

    out = flatten("infer", {"backend": "llm", "backends": {"embedding@multilingual": {"encoder": "e5"}},
                            "langs": ["en", "fr"]})
    assert out == {"infer.backend": "llm", "infer.backends.embedding_multilingual.encoder": "e5",
                   "infer.langs": '["en", "fr"]'}
    assert all(re.fullmatch(r"[0-9A-Za-z_\-. :/]+", name) for name in out)
