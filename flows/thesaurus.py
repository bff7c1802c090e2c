"""Prefect flow of the `thesaurus` stage (`tagflow thesaurus build`): parse the SKOS dump into the
concept table, check its contract, then write the table and its stats. Logic: tagflow.thesaurus.build."""
from __future__ import annotations

from flows.common import stage_flow
from tagflow.thesaurus import build

thesaurus_flow = stage_flow("thesaurus", build.run)
check_dump_flow = stage_flow("thesaurus-check-dump", build.check_dump)   # stage `data`
