"""The thesaurus: SKOS dump -> concept table (`skos`), the concept index used for tagging
(`index`), fetching the dump (`fetch`), its data contract (`contracts`) and the build step
(`build`). Concepts are identified by URI everywhere."""
from .index import Thesaurus, normalize, strings
from .skos import ThesaurusError, parse_skos, table_stats, write_table

__all__ = ["Thesaurus", "ThesaurusError", "normalize", "parse_skos", "strings", "table_stats", "write_table"]
