"""The before/after report's pure parts: histograms over common bins, the side-by-side table,
and the base model dir (no adapters) that lets the base model run through the same code."""
from __future__ import annotations

import json

from tagflow.tagger.prefeval import base_model_dir, histograms, table
from tagflow.tagger.sft import ADAPTER_META, adapter_meta, adapter_paths


def test_histograms_share_edges_and_count_every_value():
    hists = histograms({"sft": [0.1, 0.12, 0.9], "ipo": [0.95, 1.0], "base": []}, bins=4)
    assert [r["bin"] for r in hists["sft"]] == [r["bin"] for r in hists["ipo"]] == [0.125, 0.375, 0.625, 0.875]
    assert [r["count"] for r in hists["sft"]] == [2, 0, 0, 1]
    assert [r["count"] for r in hists["ipo"]] == [0, 0, 0, 2]       # 1.0 falls in the last bin
    assert sum(r["count"] for r in hists["base"]) == 0
    low = histograms({"m": [-0.5, 0.5]}, bins=3)["m"]                # negative cosines widen the range
    assert low[0]["bin"] == -0.25 and sum(r["count"] for r in low) == 2


def test_table_puts_models_side_by_side():
    entry = lambda v: {"test": {"valid_rate": v, "cosine_mean": v / 2, "cosine_se": 0.01,  # noqa: E731
                                "tagger": {"f1_doc": v / 4}}}
    out = table({"sft": entry(0.8), "ipo": entry(1.0)})
    assert out["test/valid_rate"] == {"sft": 0.8, "ipo": 1.0}
    assert out["test/cosine_mean"] == {"sft": 0.4, "ipo": 0.5}
    assert out["test/f1_doc"] == {"sft": 0.2, "ipo": 0.25}
    assert out["test/precision_doc"] == {"sft": None, "ipo": None}


def test_base_model_dir_has_the_sft_prompt_and_no_adapters(tmp_path):
    sft = tmp_path / "sft"
    sft.mkdir()
    (sft / ADAPTER_META).write_text(json.dumps({"base_model": "embedded:smollm2-135m-instruct",
                                                "prompt": "Tags for:\n\n{text}"}))
    base = base_model_dir(sft, tmp_path / "base")
    meta = adapter_meta(base)
    assert meta["prompt"] == "Tags for:\n\n{text}" and meta["adapters"] == []
    assert adapter_paths(base, meta) == []                 # the base model alone
    assert adapter_paths(sft, adapter_meta(sft)) == [str(sft)]   # a plain SFT dir is its own adapter
