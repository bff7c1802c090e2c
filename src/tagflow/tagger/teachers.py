"""Teacher LLMs that write synthetic documents: a local transformers model (offline default) or
any OpenAI-compatible chat endpoint (vLLM, Ollama, a hosted API) for real runs."""
from __future__ import annotations

import os
import time
from typing import Protocol

from ..core.errors import ConfigError, TagflowError
from ..core.generation import Messages, generate_chat
from .config import TeacherConfig


class Teacher(Protocol):
    def write(self, prompts: list[Messages], seed: int) -> list[str]: ...


class TeacherError(TagflowError, RuntimeError):
    """The teacher endpoint failed or answered something unusable."""


class TransformersTeacher:
    def __init__(self, cfg: TeacherConfig):
        from ..core.models import load_causal_lm

        self.cfg = cfg
        self.tok, self.model = load_causal_lm(cfg.model)

    def write(self, prompts: list[Messages], seed: int) -> list[str]:
        # one seed per batch: same seed, same batch -> same documents
        return generate_chat(self.tok, self.model, prompts, max_new_tokens=self.cfg.max_new_tokens,
                             batch_size=len(prompts), sample=True, temperature=self.cfg.temperature,
                             seed=seed, top_p=0.95, repetition_penalty=1.1)


class OpenAITeacher:
    """POST {base_url}/chat/completions; the key (if any) comes from $OPENAI_API_KEY."""

    def __init__(self, cfg: TeacherConfig, retries: int = 3):
        import httpx

        self.cfg, self.retries = cfg, retries
        headers = {}
        if os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {os.environ['OPENAI_API_KEY']}"
        self.client = httpx.Client(base_url=cfg.base_url.rstrip("/"), headers=headers, timeout=300)

    def _one(self, messages: Messages, seed: int) -> str:
        import httpx

        body = {"model": self.cfg.model, "messages": messages, "temperature": self.cfg.temperature,
                "max_tokens": self.cfg.max_new_tokens, "seed": seed}
        for attempt in range(1, self.retries + 1):
            try:
                resp = self.client.post("/chat/completions", json=body)
                if resp.status_code < 500 and resp.status_code != 429:  # 429: rate limited, retry
                    resp.raise_for_status()
                    return resp.json()["choices"][0]["message"]["content"] or ""
                error = f"HTTP {resp.status_code}: {resp.text[:200]}"
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}"
            except httpx.HTTPStatusError as exc:
                raise TeacherError(f"teacher endpoint {self.cfg.base_url} refused the request: "
                                   f"HTTP {exc.response.status_code} {exc.response.text[:200]}") from exc
            except (KeyError, IndexError, ValueError) as exc:
                raise TeacherError(f"teacher endpoint {self.cfg.base_url} answered without "
                                   f"choices[0].message.content: {exc!r}") from exc
            time.sleep(min(2 ** attempt, 10))
        raise TeacherError(f"teacher endpoint {self.cfg.base_url} failed {self.retries} times: {error}")

    def write(self, prompts: list[Messages], seed: int) -> list[str]:
        from concurrent.futures import ThreadPoolExecutor

        if not prompts:
            return []
        with ThreadPoolExecutor(max_workers=min(8, len(prompts))) as pool:
            return list(pool.map(lambda ip: self._one(ip[1], seed + ip[0]), enumerate(prompts)))


def make_teacher(cfg: TeacherConfig) -> Teacher:
    if cfg.kind == "transformers":
        return TransformersTeacher(cfg)
    if cfg.kind == "openai":
        return OpenAITeacher(cfg)
    raise ConfigError(f"tagger.synth.teacher.kind must be 'transformers' or 'openai', not {cfg.kind!r}")
