"""The `thesaurus` section of params.yaml."""
from __future__ import annotations

from dataclasses import dataclass

from ..core.config import param


@dataclass
class ThesaurusConfig:
    url: str = param("https://vocabularies.unesco.org/exports/thesaurus/latest/unesco-thesaurus.ttl",
                     "official location of the SKOS Turtle dump")
    dump: str = param("data/unesco-thesaurus/unesco-thesaurus.ttl", "where the dump lives (recorded by the `data` stage after its check)")
    languages: list = param(["en", "fr", "es", "ar", "ru"], "label languages kept in the concept table")
