"""The gpu profile's topics backbone: 4-bit QLoRA weights are asked for only where CUDA and
bitsandbytes both exist; anywhere else the same config loads plain weights. Availability is
mocked and the loaders are stubbed (no hub download): the test reads what `_base` asks for."""
from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from types import SimpleNamespace

import pytest
import torch

from tagflow.config import load_config
from tagflow.topics import classifiers, pooling
from tests.unit.test_config import PARAMS


class Recorder:
    """Stands in for a `from_pretrained` class method: records its keyword arguments."""

    def __init__(self):
        self.calls = []

    def from_pretrained(self, path, **kwargs):
        self.calls.append((path, kwargs))
        return SimpleNamespace(config=SimpleNamespace(pad_token_id=None))


@pytest.fixture
def machine(monkeypatch):
    """Set (cuda, bitsandbytes) availability; returns the recorders of the two model loaders."""
    loaders = {"seq_cls": Recorder(), "encoder": Recorder()}
    # The module `from transformers import ...` reads now: some libraries re-import transformers
    # during the suite (after the edu pipeline tests, sys.modules holds a new module object).
    current = importlib.import_module("transformers")
    monkeypatch.setattr(current, "AutoModelForSequenceClassification", loaders["seq_cls"])
    monkeypatch.setattr(current, "AutoModel", loaders["encoder"])
    monkeypatch.setattr(current, "AutoTokenizer", SimpleNamespace(from_pretrained=lambda path: SimpleNamespace(
        pad_token=None, eos_token="</s>", pad_token_id=2, padding_side="left")))
    monkeypatch.setattr(pooling, "is_encoder", lambda path: "bert" in path.lower())
    real_find_spec = importlib.util.find_spec

    def set_machine(cuda: bool, bnb: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: (object() if bnb else None) if name == "bitsandbytes"
                            else real_find_spec(name, *a))
        return loaders
    return set_machine


def gpu_params() -> dict:
    return dataclasses.asdict(load_config(PARAMS, "gpu").topics.train.transformer)


def test_gpu_profile_names_llama_in_4bit():
    params = gpu_params()
    assert (params["backbone"], params["load_in_4bit"], params["pooling"]) == ("meta-llama/Llama-3.2-1B", True, "auto")


@pytest.mark.parametrize("cuda, bnb", [(True, True), (True, False), (False, True), (False, False)])
def test_4bit_only_with_cuda_and_bitsandbytes(machine, cuda, bnb):
    loaders = machine(cuda, bnb)
    clf = classifiers.make_classifier("transformer", ["acq", "earn"], gpu_params())
    assert clf.runtime.load_in_4bit is (cuda and bnb)
    tok, model = clf._base()
    (path, kwargs), = loaders["seq_cls"].calls      # a decoder: its own head (last non-pad token)
    assert path == "meta-llama/Llama-3.2-1B" and clf.params["pooling"] == "model"
    assert kwargs["problem_type"] == "multi_label_classification" and kwargs["num_labels"] == 2
    quant = kwargs.get("quantization_config")
    if cuda and bnb:
        assert (quant.load_in_4bit, quant.bnb_4bit_quant_type, quant.bnb_4bit_compute_dtype) == (True, "nf4", torch.bfloat16)
        assert kwargs["device_map"] == {"": 0}
    else:                                            # the clean fallback: plain weights, no device map
        assert quant is None and "device_map" not in kwargs
    assert tok.pad_token == "</s>" and tok.padding_side == "right" and model.config.pad_token_id == 2


def test_encoder_backbone_in_4bit_loads_the_bare_encoder(machine):
    loaders = machine(True, True)
    clf = classifiers.make_classifier("transformer", ["acq", "earn"], {**gpu_params(), "backbone": "org/some-bert"})
    clf._base()
    (path, kwargs), = loaders["encoder"].calls       # mean pooling: the head is built around it
    assert clf.params["pooling"] == "mean" and kwargs["quantization_config"].load_in_4bit
    assert not loaders["seq_cls"].calls
