"""The whole of params.yaml as one typed object: the core machinery (`core.config`) applied to
each family's sections. Adding a family = one field here and one `<family>/config.py`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .core.config import PROFILES, as_dict, build, read_params  # noqa: F401 (re-exported)
from .core.errors import ConfigError  # noqa: F401 (re-exported)
from .deploy import DeployConfig
from .edu.config import EduConfig
from .tagger.config import TaggerConfig
from .thesaurus.config import ThesaurusConfig
from .topics.config import TopicsConfig


@dataclass
class Config:
    profile: str = "cpu"
    thesaurus: ThesaurusConfig = field(default_factory=ThesaurusConfig)
    tagger: TaggerConfig = field(default_factory=TaggerConfig)
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    edu: EduConfig = field(default_factory=EduConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)   # Prefect schedules, no stage reads it


def load_config(path: str | Path = "params.yaml", profile: str | None = None) -> Config:
    """Read params.yaml, apply the profile overlay (argument, else the file's `profile`), and
    check everything, backend parameters included."""
    cfg = build(Config, read_params(path, profile), str(path))
    from .tagger.backends import check_params
    check_params(cfg.tagger.infer, where=f"{path}: tagger.infer")
    from .topics.config import check as check_topics
    check_topics(cfg.topics, where=f"{path}: topics")
    from .edu.config import check as check_edu
    check_edu(cfg.edu, where=f"{path}: edu")
    return cfg
