"""Multi-process training plumbing without launching anything: a process's rank from the
launcher's environment, when a stage starts a group, the launch command, the `processes`
parameter, and each rank's GPU in the model loaders (availability mocked, loaders stubbed)."""
from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
import torch

from tagflow.config import load_config
from tagflow.core import distributed, models
from tagflow.core.errors import ConfigError
from tagflow.core.models import Runtime
from tagflow.topics import classifiers
from tests.unit.test_config import PARAMS, write_params
from tests.unit.test_topics_qlora import gpu_params, machine  # noqa: F401 (machine is a fixture)

RANK_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@pytest.fixture
def rank(monkeypatch):
    """Set this process's place in a group (rank, local rank, world size); none set by default."""
    for name in RANK_VARS:
        monkeypatch.delenv(name, raising=False)

    def set_rank(*values):
        for name, value in zip(RANK_VARS, values):
            monkeypatch.setenv(name, str(value))
    return set_rank


def test_outside_a_group_this_is_rank_0_of_1(rank):
    assert distributed.current() == distributed.Rank(0, 0, 1)
    assert distributed.is_main() and not distributed.current().distributed


def test_rank_from_the_launchers_variables(rank):
    rank(3, 1, 4)
    here = distributed.current()
    assert (here.rank, here.local_rank, here.world_size) == (3, 1, 4)
    assert not here.is_main and here.distributed and distributed.local_rank() == 1


@pytest.mark.parametrize("values, message", [
    ((0, 0, "two"), r"environment variable WORLD_SIZE: expected an integer, got 'two'"),
    ((2, 0, 2), r"inconsistent RANK=2 LOCAL_RANK=0 WORLD_SIZE=2"),
    ((0, -1, 2), r"inconsistent RANK=0 LOCAL_RANK=-1 WORLD_SIZE=2"),
])
def test_bad_launcher_variables_are_one_line_errors(rank, values, message):
    rank(*values)
    with pytest.raises(ConfigError, match=message):
        distributed.current()


def test_a_stage_launches_a_group_only_for_several_processes_and_not_from_inside_one(rank):
    assert not distributed.should_launch(1)
    assert distributed.should_launch(2)
    rank(1, 1, 2)                          # a process of a launched group trains in place
    assert not distributed.should_launch(2)


def test_launch_command_is_accelerate_launch_of_the_module():
    cmd = distributed.launch_command("tagflow.tagger.train_group", ["spec.json"], 2)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in cmd and "--cpu" not in cmd     # --cpu would start one process (docstring)
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[-3:] == ["-m", "tagflow.tagger.train_group", "spec.json"]


def test_processes_default_to_one_in_every_profile():
    for profile in ("smoke", "cpu", "gpu"):
        tagger = load_config(PARAMS, profile).tagger
        assert (tagger.sft.processes, tagger.ipo.processes) == (1, 1), profile


@pytest.mark.parametrize("section", ["sft", "ipo"])
def test_processes_below_one_are_refused(tmp_path, section):
    path = write_params(tmp_path, lambda raw: raw["tagger"][section].update(processes=0))
    with pytest.raises(ConfigError, match=rf"^tagger\.{section}\.processes: expected at least 1, got 0$"):
        load_config(path)


def test_more_processes_than_gpus_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match=r"2 training processes asked for, but this machine has 1 GPU"):
        distributed.run_group("tagflow.tagger.train_group", {}, 2, tmp_path)


def test_runtime_targets_its_own_gpu():
    assert Runtime("cuda", torch.bfloat16, True, 1).target == "cuda:1"
    assert Runtime("cuda", torch.bfloat16, True, 1).device_map == {"": 1}
    assert Runtime("cuda", torch.bfloat16, False).target == "cuda:0"
    assert Runtime("cpu", torch.float32, False).target == "cpu"


def test_cuda_runtime_takes_the_local_rank(rank, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    rank(3, 1, 4)
    assert models.pick_runtime().index == 1


class FakeLM:
    """Stands in for AutoModelForCausalLM: records from_pretrained's keywords and `.to` targets."""

    def __init__(self):
        self.kwargs, self.moved = None, []

    def from_pretrained(self, path, **kwargs):
        self.kwargs = kwargs
        return self

    def to(self, target):
        self.moved.append(target)
        return self

    def eval(self):
        return self


@pytest.mark.parametrize("four_bit", [True, False])
def test_causal_lm_loads_on_the_runtimes_gpu(monkeypatch, four_bit):
    current = importlib.import_module("transformers")
    lm = FakeLM()
    monkeypatch.setattr(current, "AutoModelForCausalLM", lm)
    monkeypatch.setattr(current, "AutoTokenizer", SimpleNamespace(
        from_pretrained=lambda path: SimpleNamespace(pad_token=None, eos_token="</s>", padding_side="right")))
    models.load_causal_lm("some/model", Runtime("cuda", torch.bfloat16, four_bit, 1))
    if four_bit:   # placed by the 4-bit loader on GPU 1, never moved
        assert lm.kwargs["device_map"] == {"": 1} and lm.moved == []
    else:
        assert "device_map" not in lm.kwargs and lm.moved == ["cuda:1"]


def test_topics_4bit_backbone_loads_on_the_local_ranks_gpu(machine, rank):  # noqa: F811
    loaders = machine(True, True)
    rank(1, 1, 2)
    clf = classifiers.make_classifier("transformer", ["acq", "earn"], gpu_params())
    clf._base()
    (_, kwargs), = loaders["seq_cls"].calls
    assert kwargs["device_map"] == {"": 1} and clf.runtime.target == "cuda:1"
