"""Multi-process (multi-GPU) training: which process of a launched group this is, and how a stage
starts such a group for its training function alone.

A stage with `processes: 1` trains in its own process, as always. With more, the stage process
keeps everything that must happen once (its MLflow run, the Prefect flow, the outputs) and runs
only the training function in a group started by `accelerate launch` (torch.distributed.run
underneath): one process per GPU, NCCL between them; on a machine without CUDA the same launch
runs CPU processes that the Trainer joins over gloo (`use_cpu`), which is how the path is tested
without GPUs. Each process reads the variables the launcher sets (RANK, LOCAL_RANK, WORLD_SIZE);
rank 0 alone writes outputs and logs metrics.

Why `accelerate launch --multi_gpu` on a CPU machine too: accelerate's `--cpu` flag selects its
simple launcher, which starts ONE process (several CPU processes need `mpirun` and a hostfile);
the `--multi_gpu` launcher is torch.distributed.run, which starts N processes whatever the device,
and the Trainer picks gloo when told to use the CPU."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, ModelError
from .log import get_logger

log = get_logger("distributed")

SUMMARY = "summary.json"   # what rank 0 leaves in the group's work dir for the stage process


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}: expected an integer, got {value!r}") from None


def current() -> Rank:
    """This process's place in a group started by accelerate/torchrun (rank 0 of 1 otherwise)."""
    rank = Rank(_env_int("RANK", 0), _env_int("LOCAL_RANK", 0), _env_int("WORLD_SIZE", 1))
    if rank.world_size < 1 or not 0 <= rank.rank < rank.world_size or rank.local_rank < 0:
        raise ConfigError(f"inconsistent RANK={rank.rank} LOCAL_RANK={rank.local_rank} "
                          f"WORLD_SIZE={rank.world_size} in the environment")
    return rank


def local_rank() -> int:
    return current().local_rank


def is_main() -> bool:
    return current().is_main


def note_group(summary: dict, trainer) -> Rank:
    """This process's rank; in a launched group, the Trainer's own process count goes into the
    training summary (proof it trained as one DDP group)."""
    rank = current()
    if rank.distributed:
        summary["processes"] = trainer.args.world_size
    return rank


def check_processes(processes: int, where: str) -> None:
    """A config's `processes`: at least 1 (the GPU count is checked at launch, `run_group`)."""
    if processes < 1:
        raise ConfigError(f"{where}.processes: expected at least 1, got {processes}")


def should_launch(processes: int) -> bool:
    """True in a stage process that must start a group; False inside one (or for 1 process)."""
    return processes > 1 and not current().distributed


def launch_command(module: str, args: list[str], processes: int) -> list[str]:
    """`accelerate launch` of `python -m module args` in `processes` processes on this machine."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
            "--num_processes", str(processes), "--num_machines", "1",
            "--mixed_precision", "no",      # the Trainer's own bf16 argument decides
            "--dynamo_backend", "no", "--main_process_port", "0",   # 0: a free port
            "-m", module, *args]


def run_group(module: str, spec: dict, processes: int, work_dir: str | Path) -> dict:
    """Run `python -m module <spec.json>` in a launched group of `processes`; return the summary
    rank 0 wrote (`write_summary`). The module's main reads the spec (`read_spec`). The spec and
    summary live in a temporary folder under `work_dir`, removed afterwards."""
    import torch

    if torch.cuda.is_available() and processes > torch.cuda.device_count():
        raise ConfigError(f"{processes} training processes asked for, but this machine has "
                          f"{torch.cuda.device_count()} GPU(s)")
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    group_dir = Path(tempfile.mkdtemp(prefix=".train-group-", dir=work))
    try:
        return _run(module, spec, processes, group_dir)
    finally:
        shutil.rmtree(group_dir, ignore_errors=True)


def _run(module: str, spec: dict, processes: int, group_dir: Path) -> dict:
    import torch

    spec_path, summary_path = group_dir / "spec.json", group_dir / SUMMARY
    spec_path.write_text(json.dumps({**spec, "summary": str(summary_path), "processes": processes},
                                    indent=2) + "\n")
    cmd = launch_command(module, [str(spec_path)], processes)
    env = dict(os.environ)
    if not torch.cuda.is_available():   # each CPU process its share of the cores (torchrun: 1)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    log.info("training in %d processes (%s): %s", processes,
             "one per GPU" if torch.cuda.is_available() else "CPU, gloo", " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, env=env)
    try:
        code = proc.wait()
    except BaseException:      # Ctrl-C or a failing stage: the group must not outlive it
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    if code != 0:
        raise ModelError(f"training group of {processes} processes failed (exit {code}; its output is above)")
    if not summary_path.exists():
        raise ModelError("training group finished without rank 0's summary")
    return json.loads(summary_path.read_text())


def read_spec(argv: list[str]) -> dict:
    """The spec a group's processes were started with; checks the group has the size asked for."""
    if len(argv) != 1:
        raise ConfigError(f"expected one argument, the spec file; got {argv}")
    spec = json.loads(Path(argv[0]).read_text())
    rank = current()
    if rank.world_size != spec["processes"]:
        raise ConfigError(f"launched as {rank.world_size} process(es), the spec asks for {spec['processes']}")
    return spec


def write_summary(spec: dict, summary: dict) -> None:
    """Rank 0 only: the summary the stage process reads back."""
    if not is_main():
        return
    from .io import write_json
    write_json(spec["summary"], summary)
