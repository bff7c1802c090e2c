"""One exception hierarchy for everything a user can cause and fix: bad parameters, missing or
malformed data, a broken contract, an empty registry. The CLI prints these as one line and exits
with status 2; any other exception is a bug and keeps its traceback."""
from __future__ import annotations


class TagflowError(Exception):
    """A problem in the user's input, data or environment, explained by its message."""


class ConfigError(TagflowError, ValueError):
    """params.yaml (or a model card) holds an unknown key, a wrong type or an unknown name."""


class DataError(TagflowError, ValueError):
    """Input data is missing, empty or malformed."""


class ModelError(TagflowError):
    """A model cannot be resolved or loaded."""


class RegistryError(TagflowError, LookupError):
    """The model registry lacks what was asked for (model, version, champion)."""
