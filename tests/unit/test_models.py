"""Model id resolution and device/dtype choice, without loading any weights."""
from __future__ import annotations

import pytest
import torch

from tagflow.core import models
from tagflow.core.models import Runtime, pick_runtime, resolve


def test_hub_names_and_directories_pass_through():
    assert resolve("LiquidAI/LFM2.5-1.2B-Instruct") == "LiquidAI/LFM2.5-1.2B-Instruct"
    assert resolve("/models/my-tagger") == "/models/my-tagger"


def test_unknown_embedded_model():
    with pytest.raises(ValueError, match=r"unknown embedded model 'gpt-17'; known: \['smollm2-135m-instruct'\]"):
        resolve("embedded:gpt-17")


def test_embedded_model_already_unpacked(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGFLOW_CACHE", str(tmp_path))
    folder = tmp_path / "models" / "smollm2-135m-instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    monkeypatch.setattr(models, "_unpack_gguf", lambda *a: pytest.fail("must not unpack again"))
    assert resolve("embedded:smollm2-135m-instruct") == str(folder)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only expectations")
def test_cpu_runtime_matches_the_cpu():
    rt = pick_runtime()
    assert rt.device == "cpu" and rt.load_in_4bit is False
    assert rt.dtype == (torch.bfloat16 if models.cpu_has_native_bf16() else torch.float32)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU-only expectations")
@pytest.mark.parametrize("native_bf16, dtype", [(False, torch.float32), (True, torch.bfloat16)])
def test_cpu_dtype_follows_bf16_support(monkeypatch, native_bf16, dtype):
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: native_bf16)
    assert pick_runtime(want_4bit=True) == Runtime("cpu", dtype, False)  # no 4-bit without CUDA


def test_bf16_detection_reads_cpu_flags():
    flags = open("/proc/cpuinfo").read()
    assert models.cpu_has_native_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


def test_runtime_description():
    assert Runtime("cpu", torch.float32, False).describe() == "cpu/float32"
    assert Runtime("cuda", torch.bfloat16, True).describe() == "cuda/bfloat16 4-bit"
