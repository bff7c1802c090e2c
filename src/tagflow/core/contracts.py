"""Data contracts: the Great Expectations plumbing every family's suites share.

A family's check (e.g. `thesaurus.contracts`, `tagger.contracts`) builds a pandas frame of its
data plus helper columns (word counts, "labels that are not an English prefLabel", ...) and a list
of GX 1.x expectations; `validate` runs them in an ephemeral context, writes GX Data Docs plus a
self-contained summary page (`report.html`) under the given directory, and `raise_on_failure`
raises ContractError naming every failed expectation.

Helper columns that must be empty are checked with `expect_column_values_to_be_null`: the
offending values (the bad label, the dangling URI) then show up as GX's unexpected values, and
the report stays small however large the thesaurus is (an in-set check would print all of it).

GX is imported inside functions: it costs seconds, and most tagflow commands never need it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from .errors import DataError
from .log import get_logger

log = get_logger("contracts")

MAX_EXAMPLES = 5  # unexpected values quoted per failed expectation in messages


class ContractError(DataError):
    """Data broke a contract. The message lists every failed expectation; `report` has them all."""

    def __init__(self, message: str, report: "ContractReport | None" = None):
        super().__init__(message)
        self.report = report


class Outcome(NamedTuple):
    suite: str
    expectation: str  # GX expectation type, e.g. expect_column_values_to_be_unique
    column: str       # column(s) it checks; "" for table-level expectations
    success: bool
    observed: str     # what GX saw, rendered short (observed value or unexpected examples)


@dataclass
class ContractReport:
    success: bool
    results: list[Outcome] = field(default_factory=list)
    html_path: Path | None = None        # self-contained summary page (works offline)
    data_docs_index: Path | None = None  # GX Data Docs index beside it

    @property
    def failures(self) -> list[Outcome]:
        return [r for r in self.results if not r.success]


def summarize(report: ContractReport) -> str:
    """One line per failed expectation: `suite: expectation(column): observed`."""
    return "\n".join(
        f"{r.suite}: {r.expectation}({r.column}) failed: {r.observed}" if r.column
        else f"{r.suite}: {r.expectation} failed: {r.observed}"
        for r in report.failures)


def raise_on_failure(report: ContractReport) -> None:
    """Print the failed expectations to stderr and raise ContractError if there are any."""
    if report.success:
        return
    message = (f"{len(report.failures)} of {len(report.results)} data-contract expectations failed "
               f"(report: {report.html_path}):\n{summarize(report)}")
    log.error("%s", message)
    raise ContractError(message, report)


def as_list(value: Any) -> list:
    """Lists come back from Parquet as numpy arrays, and from bad data as anything at all."""
    if value is None or isinstance(value, float):  # None / NaN: no links
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


# ---------------------------------------------------------------- GX plumbing

def gx_expectations():
    # No network here, and usage statistics have no business leaving a user's machine anyway.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations.expectations as gxe

    return gxe


def validate(batches: list[tuple[str, pd.DataFrame, list]], site_dir: Path,
             index_column: str | None) -> ContractReport:
    """Run each (suite name, frame, expectations) in one ephemeral GX context, build Data Docs
    into `site_dir` (replaced whole, so no stale pages of an earlier run), then raise on failure."""
    from .io import atomic_path

    site_dir = Path(site_dir).resolve()  # GX's site store wants an absolute base directory
    gx_expectations()  # analytics off before anything of GX loads
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig, InMemoryStoreBackendDefaults, ProgressBarsConfig)

    result_format: dict = {"result_format": "SUMMARY"}
    if index_column:
        result_format["unexpected_index_column_names"] = [index_column]
    outcomes: list[Outcome] = []
    with atomic_path(site_dir, is_dir=True) as tmp_site:
        site = {"class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                                  "base_directory": str(tmp_site)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
        # Our own config: the default ephemeral one adds a docs site in a fresh /tmp directory.
        context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            data_docs_sites={"tagflow": site}, analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False)))
        source = context.data_sources.add_pandas("tagflow")
        for suite_name, frame, expectations in batches:
            asset_name = suite_name.replace(".", "_")
            asset = source.add_dataframe_asset(asset_name)
            batch_def = asset.add_batch_definition_whole_dataframe("all")
            # Given whole: add_expectation() re-serializes the stored suite on every call.
            suite = context.suites.add(gx.ExpectationSuite(name=suite_name,
                                                           expectations=expectations))
            validation = context.validation_definitions.add(
                gx.ValidationDefinition(name=asset_name, data=batch_def, suite=suite))
            use_index = index_column in frame.columns
            result = validation.run(batch_parameters={"dataframe": frame},
                                    result_format=result_format if use_index else "SUMMARY")
            outcomes += [_outcome(suite_name, r, index_column if use_index else None)
                         for r in result.results]
        context.build_data_docs(site_names=["tagflow"])
        success = all(o.success for o in outcomes)
        # GX's own pages pull jQuery/Bootstrap from CDNs (its index is blank offline), so the
        # entry point is a self-contained page that links to GX's per-suite pages.
        (tmp_site / "report.html").write_text(
            _render_html(site_dir.name, success, outcomes, _validation_pages(tmp_site)))
    report = ContractReport(success=success, results=outcomes,
                            html_path=site_dir / "report.html",
                            data_docs_index=site_dir / "index.html")
    raise_on_failure(report)
    return report


def _validation_pages(site: Path) -> dict[str, str]:
    """Suite name -> GX validation page (relative to the site): validations/<suite split at
    dots>/<run name>/<run time>/<batch>.html."""
    pages = {}
    for page in sorted((site / "validations").rglob("*.html")):
        parts = page.relative_to(site / "validations").parts
        pages[".".join(parts[:-3])] = page.relative_to(site).as_posix()
    return pages


def _render_html(title: str, success: bool, outcomes: list[Outcome], pages: dict[str, str]) -> str:
    from html import escape

    failed = sum(not o.success for o in outcomes)
    status = "PASSED" if success else f"FAILED ({failed} of {len(outcomes)} expectations)"
    sections = []
    for suite in dict.fromkeys(o.suite for o in outcomes):
        rows = "".join(
            f'<tr class="{"ok" if o.success else "bad"}"><td>{"pass" if o.success else "FAIL"}</td>'
            f"<td>{escape(o.expectation)}</td><td>{escape(o.column)}</td>"
            f"<td>{escape(o.observed)}</td></tr>"
            for o in sorted((o for o in outcomes if o.suite == suite), key=lambda o: o.success))
        link = (f' <a href="{escape(pages[suite])}">Great Expectations page</a>'
                if suite in pages else "")
        sections.append(f"<h2>{escape(suite)}{link}</h2><table><tr><th>status</th>"
                        f"<th>expectation</th><th>column</th><th>observed</th></tr>{rows}</table>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tagflow data contracts: {escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}
tr.bad{{background:#fde2e2}} tr.ok td:first-child{{color:#2a7}} .status{{font-weight:bold}}</style>
</head><body><h1>Data contracts: {escape(title)}</h1>
<p class="status">{escape(status)}</p>
<p><a href="index.html">Great Expectations Data Docs index</a> (needs network for its scripts)</p>
{"".join(sections)}
</body></html>
"""


def _outcome(suite: str, r: Any, index_column: str | None) -> Outcome:
    kwargs = r.expectation_config.kwargs
    columns = [kwargs[k] for k in ("column", "column_A", "column_B") if kwargs.get(k)]
    return Outcome(suite, r.expectation_config.type, ", ".join(columns), bool(r.success),
                   _observed(r, index_column))


def _observed(r: Any, index_column: str | None) -> str:
    error = _exception_message(r.exception_info)
    if error:
        return f"error: {error}"
    res = r.result or {}
    if "observed_value" in res:
        return f"observed {_short(res['observed_value'])}"
    if "unexpected_count" in res:
        n, total = res["unexpected_count"], res.get("element_count")
        if not n:
            return f"0 of {total} rows unexpected"
        examples = []
        for entry in (res.get("partial_unexpected_index_list") or [])[:MAX_EXAMPLES]:
            if isinstance(entry, dict) and index_column in entry:
                key = entry[index_column]
                values = [v for k, v in entry.items() if k != index_column]
                shown = values[0] if len(values) == 1 else tuple(values) if values else key
                examples.append(f"{key}: {_short(shown)}")
        if not examples:
            values = res.get("partial_unexpected_list") or []
            examples = [_short(v) for v in values[:MAX_EXAMPLES]]
        return f"{n} of {total} rows unexpected, e.g. " + "; ".join(examples)
    if r.expectation_config.type == "expect_column_to_exist":
        return "column missing"
    return _short(res)


def _exception_message(info: Any) -> str | None:
    """GX reports errors flat for some expectations, nested per metric for others."""
    if not isinstance(info, dict):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message"))
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message"))
    return None


def _short(value: Any, limit: int = 100) -> str:
    def plain(v: Any) -> Any:
        v = v.item() if hasattr(v, "item") else v  # numpy scalar -> python
        return None if isinstance(v, float) and v != v else v  # pandas shows None as NaN

    value = tuple(map(plain, value)) if isinstance(value, (tuple, list)) else plain(value)
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
