"""Data contracts: Great Expectations suites over the concept table and the SFT splits.

Each check builds a pandas frame of the data plus helper columns computed here (word counts,
"labels that are not an English prefLabel", "text also present in another split", ...), validates
it with GX 1.x expectations in an ephemeral context, writes GX Data Docs plus a self-contained
summary page (`report.html`) under `docs_dir/<concepts|splits>/`, and raises ContractError naming
every failed expectation.

Helper columns that must be empty are checked with `expect_column_values_to_be_null`: the
offending values (the bad label, the dangling URI) then show up as GX's unexpected values, and
the report stays small however large the thesaurus is (an in-set check would print all of it).

GX is imported inside functions: it costs seconds, and most tagflow commands never need it.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from .config import ContractsConfig

SPLITS = ("train", "val", "test")
CONCEPT_LINKS = ("broader", "narrower", "related")
MAX_EXAMPLES = 5  # unexpected values quoted per failed expectation in messages


class ContractError(RuntimeError):
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
    print(message, file=sys.stderr)
    raise ContractError(message, report)


# ---------------------------------------------------------------- concept table

def check_concepts(table: pd.DataFrame, docs_dir: str | Path, *,
                   min_micro_thesaurus_share: float | None = None) -> ContractReport:
    """Validate the concept table; the report goes to `docs_dir/concepts/report.html` (GX Data
    Docs beside it).

    `min_micro_thesaurus_share`: if given, at least this share of concepts must belong to a
    micro-thesaurus (off by default: generic SKOS files may have no groups at all)."""
    gxe = _gx_expectations()

    frame = concept_frame(table)
    present = set(table.columns)
    exps: list = [gxe.ExpectTableRowCountToBeBetween(min_value=1)]
    exps += [gxe.ExpectColumnToExist(column=c) for c in ("uri", "pref_en", *CONCEPT_LINKS)]
    if "uri" in present:
        exps += [gxe.ExpectColumnValuesToNotBeNull(column="uri"),
                 gxe.ExpectColumnValuesToMatchRegex(column="uri", regex=r"^\S+$"),
                 gxe.ExpectColumnValuesToBeUnique(column="uri")]
    if "pref_en" in present:
        exps += [gxe.ExpectColumnValuesToNotBeNull(column="pref_en"),
                 gxe.ExpectColumnValuesToMatchRegex(column="pref_en", regex=r"\S"),
                 gxe.ExpectColumnValuesToBeUnique(column="pref_en")]
    exps += [gxe.ExpectColumnValuesToBeNull(column=f"dangling_{rel}")
             for rel in CONCEPT_LINKS if rel in present]
    if min_micro_thesaurus_share is not None:
        exps.append(gxe.ExpectColumnProportionOfNonNullValuesToBeBetween(
            column="micro_thesaurus_or_null", min_value=float(min_micro_thesaurus_share)))
    return _validate([("concepts", frame, exps)], Path(docs_dir) / "concepts",
                     index_column="uri" if "uri" in present else None)


def concept_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The checked columns of the table plus helpers: `dangling_<link>` holds the URIs a concept
    points to (broader/narrower/related) that are not rows of the table, else None."""
    kept = [c for c in ("uri", "pref_en", *CONCEPT_LINKS, "micro_thesaurus", "domain")
            if c in table.columns]
    frame = table[kept].copy()
    known = set(table["uri"]) if "uri" in table.columns else set()
    for rel in CONCEPT_LINKS:
        if rel in table.columns:
            frame[f"dangling_{rel}"] = [
                ", ".join(u for u in _as_list(v) if u not in known) or None for v in table[rel]]
    if "micro_thesaurus" in table.columns:
        frame["micro_thesaurus_or_null"] = [
            v if isinstance(v, str) and v else None for v in table["micro_thesaurus"]]
    else:
        frame["micro_thesaurus_or_null"] = pd.Series([None] * len(table), dtype=object)
    return frame


# ---------------------------------------------------------------- SFT splits

def check_splits(splits_dir: str | Path, concepts: pd.DataFrame, cfg: ContractsConfig,
                 expected_counts: dict[str, int], docs_dir: str | Path) -> ContractReport:
    """Validate `<split>.jsonl` in `splits_dir` for each split named in `expected_counts`
    (normally train/val/test) against the concept table and `cfg`;
    the report goes to `docs_dir/splits/report.html` (GX Data Docs beside it).
    A missing or non-JSON split file raises ContractError at once, before any report."""
    gxe = _gx_expectations()

    rows = load_splits(splits_dir, tuple(expected_counts))
    frames = split_frames(rows, concepts)
    micro_set = sorted({v for v in concepts.get("micro_thesaurus", pd.Series(dtype=object))
                        if isinstance(v, str)})
    batches = []
    for split, frame in frames.items():
        exps = [
            gxe.ExpectTableRowCountToEqual(value=int(expected_counts[split])),
            gxe.ExpectColumnValuesToNotBeNull(column="id"),
            gxe.ExpectColumnValuesToNotBeNull(column="text"),
            gxe.ExpectColumnValuesToMatchRegex(column="text", regex=r"\S"),
            gxe.ExpectColumnValuesToBeBetween(column="text_words", min_value=cfg.min_text_words),
            gxe.ExpectColumnValuesToBeNull(column="text_also_in_split"),
            gxe.ExpectColumnValuesToBeBetween(column="n_keywords", min_value=cfg.min_keywords,
                                              max_value=cfg.max_keywords),
            # labels[i] belongs to uris[i], so both lists must have the same length
            gxe.ExpectColumnPairValuesToBeEqual(column_A="n_keywords", column_B="n_uris"),
            gxe.ExpectColumnValuesToBeNull(column="labels_not_pref_en"),
            gxe.ExpectColumnValuesToBeNull(column="uris_not_in_thesaurus"),
            gxe.ExpectColumnValuesToBeNull(column="label_not_pref_of_uri"),
            gxe.ExpectColumnValuesToBeNull(column="duplicate_keywords"),
            gxe.ExpectColumnValuesToNotBeNull(column="micro_thesaurus"),
            gxe.ExpectColumnValuesToBeInSet(column="micro_thesaurus", value_set=micro_set),
            gxe.ExpectColumnValuesToBeNull(column="prompt_without_text"),
            gxe.ExpectColumnValuesToNotBeNull(column="completion_content"),
            gxe.ExpectColumnValuesToBeJsonParseable(column="completion_content"),
            gxe.ExpectColumnPairValuesToBeEqual(column_A="completion_labels",
                                                column_B="gold_labels"),
        ]
        batches.append((f"splits.{split}", frame, exps))
    everything = pd.concat(list(frames.values()), ignore_index=True)
    batches.append(("splits.all", everything[["id", "split"]],
                    [gxe.ExpectColumnValuesToBeUnique(column="id")]))
    return _validate(batches, Path(docs_dir) / "splits", index_column="id")


def load_splits(splits_dir: str | Path, splits=SPLITS) -> dict[str, list[dict]]:
    from .io import read_jsonl

    splits_dir = Path(splits_dir)
    missing = [str(splits_dir / f"{s}.jsonl") for s in splits
               if not (splits_dir / f"{s}.jsonl").exists()]
    if missing:
        raise ContractError(f"split file(s) missing: {', '.join(missing)}")
    out = {}
    for split in splits:
        try:
            out[split] = read_jsonl(splits_dir / f"{split}.jsonl")
        except ValueError as exc:  # a line that is not JSON: the file itself breaks the contract
            raise ContractError(str(exc)) from exc
    return out


def split_frames(rows: dict[str, list[dict]], concepts: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One frame per split: scalar fields plus the helper columns the suites check."""
    pref_of = dict(zip(concepts["uri"], concepts["pref_en"]))
    pref_labels = {v for v in pref_of.values() if v}
    splits_of_text: dict[str, set[str]] = {}
    for split, items in rows.items():
        for row in items:
            text = _text(row)
            if text is not None and text.strip():
                splits_of_text.setdefault(_norm_ws(text), set()).add(split)

    frames = {}
    for split, items in rows.items():
        records = []
        for row in items:
            row = row if isinstance(row, dict) else {}
            text = _text(row)
            labels = [str(x) for x in _as_list(row.get("labels"))]
            uris = [str(x) for x in _as_list(row.get("uris"))]
            others = sorted(splits_of_text.get(_norm_ws(text), set()) - {split}) if text else []
            content = _message_content(row.get("completion"), "assistant")
            prompt = _message_content(row.get("prompt"), "user")
            mismatch = [f"{lab!r} is not the prefLabel of {uri} ({pref_of[uri]!r})"
                        for lab, uri in zip(labels, uris) if uri in pref_of and pref_of[uri] != lab]
            records.append({
                "id": _str_or_none(row.get("id")),
                "split": split,
                "text": text,
                "text_words": len(text.split()) if text else 0,
                "text_also_in_split": ", ".join(others) or None,
                "n_keywords": len(labels),
                "n_uris": len(uris),
                "labels_not_pref_en": _joined(lab for lab in labels if lab not in pref_labels),
                "uris_not_in_thesaurus": _joined(u for u in uris if u not in pref_of),
                "label_not_pref_of_uri": _joined(mismatch),
                "duplicate_keywords": _joined(sorted({x for x in labels if labels.count(x) > 1})),
                "micro_thesaurus": _str_or_none(row.get("micro_thesaurus")),
                "prompt_without_text": (None if text and prompt and text in prompt
                                        else (prompt or "<no user message>")[:120]),
                "completion_content": content,
                "completion_labels": _canonical_json(content),
                "gold_labels": json.dumps(labels, ensure_ascii=False),
            })
        frames[split] = pd.DataFrame.from_records(records, columns=_SPLIT_COLUMNS)
    return frames


_SPLIT_COLUMNS = ["id", "split", "text", "text_words", "text_also_in_split", "n_keywords",
                  "n_uris", "labels_not_pref_en", "uris_not_in_thesaurus", "label_not_pref_of_uri",
                  "duplicate_keywords", "micro_thesaurus", "prompt_without_text",
                  "completion_content", "completion_labels", "gold_labels"]


def _text(row: dict) -> str | None:
    text = row.get("text") if isinstance(row, dict) else None
    return text if isinstance(text, str) else None


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _norm_ws(text: str | None) -> str:
    return " ".join((text or "").split())


def _joined(values) -> str | None:
    values = list(values)
    return "; ".join(values) if values else None


def _as_list(value: Any) -> list:
    """Lists come back from Parquet as numpy arrays, and from bad data as anything at all."""
    if value is None or isinstance(value, float):  # None / NaN: no links
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _message_content(messages: Any, role: str) -> str | None:
    """Content of the single `role` message of a chat list, None if the shape is wrong."""
    if (isinstance(messages, list) and len(messages) == 1 and isinstance(messages[0], dict)
            and messages[0].get("role") == role and isinstance(messages[0].get("content"), str)):
        return messages[0]["content"]
    return None


def _canonical_json(content: str | None) -> str | None:
    """Re-dump parsed JSON so formatting (spaces, escapes) does not count as a difference."""
    if content is None:
        return None
    try:
        return json.dumps(json.loads(content), ensure_ascii=False)
    except ValueError:
        return None


# ---------------------------------------------------------------- GX plumbing

def _gx_expectations():
    # No network here, and usage statistics have no business leaving a user's machine anyway.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations.expectations as gxe

    return gxe


def _validate(batches: list[tuple[str, pd.DataFrame, list]], site_dir: Path,
              index_column: str | None) -> ContractReport:
    """Run each (suite name, frame, expectations) in one ephemeral GX context, build Data Docs
    into `site_dir` (replaced whole, so no stale pages of an earlier run), then raise on failure."""
    from .io import atomic_path

    site_dir = Path(site_dir).resolve()  # GX's site store wants an absolute base directory
    _gx_expectations()  # analytics off before anything of GX loads
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
