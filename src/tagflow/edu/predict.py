"""Loading a scorer for `tagflow edu predict` (and any endpoint): a registered version by alias,
or a local model folder. Both end in `EduScorer.score`, the evaluation's inference path."""
from __future__ import annotations

from pathlib import Path

from ..core.errors import RegistryError
from .model import EduScorer


def default_model_name(params: str) -> str:
    from .config import RegistryConfig

    if Path(params).exists():
        from ..config import load_config
        models = load_config(params).edu.registry.models
    else:
        models = RegistryConfig().models
    if not models:
        raise RegistryError("edu.registry.models is empty: pass --model NAME")
    return next(iter(models.values()))


def load_model(params: str, model_name: str | None = None, alias: str = "champion",
               model_dir: str | None = None) -> tuple[EduScorer, dict]:
    """(scorer, reference written with each answer: {name, version} or {path})."""
    if model_dir:
        scorer = EduScorer.load(model_dir)
        return scorer, {"path": str(model_dir), "setup": scorer.card.get("setup")}
    import mlflow
    from mlflow.exceptions import MlflowException

    from ..core import registry

    name = model_name or default_model_name(params)
    if alias == registry.CHAMPION:
        model, version = registry.load_champion(name)
    else:
        client = registry._client()
        try:
            version = str(client.get_model_version_by_alias(name, alias).version)
        except MlflowException as exc:
            raise RegistryError(f"model {name!r} has no alias {alias!r} in {registry.tracking_uri()}") from exc
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    return model.unwrap_python_model().scorer, {"name": name, "version": version, "alias": alias}
