"""The `edu` section of params.yaml: one dataclass per pipeline step of the educational-value
family (every field has a default and a help text)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import param

# Source name -> (file in the mirror / data folder, language, annotator). The loaders in
# `edu.data` turn each into the common schema (text, language, score, annotator, source).
SOURCES = {
    "en_llm": ("fineweb-edu-llama33/annotations.csv", "en", "llama-3.3-70b"),
    "da_human": ("fineweb-c-danish/fineweb-c_danish.csv", "da", "human"),
    "da_llm": ("fineweb-c-danish/danish_gemini_labelled.csv", "da", "gemini-2.5-flash"),
}
HEADS = ("linear", "ridge", "mlp", "ordinal")
RUNTIMES = ("torch", "torch-compile", "onnx-int8")  # edu.embed.runtime (edu/model.py encode)


@dataclass
class DataConfig:
    raw_dir: str = param("data/edu", "where `tagflow edu fetch` puts the annotation CSVs")
    urls: dict = param({}, "official download URL per source (en_llm, da_human, da_llm); a source "
                           "without one, or unreachable, is copied from the mirror")
    sources: list = param(["en_llm", "da_llm", "da_human"], "annotation sets to import")
    seed: int = param(13, "seed of the train/val/test draw")
    val_fraction: float = param(0.2, "share of each source held out for validation (stratified by score)")
    test_fraction: float = param(0.2, "share of each source held out for test (stratified by score)")
    max_per_source: int = param(0, "if > 0, keep this many pages per source (smoke runs)")


@dataclass
class ContractsConfig:
    min_rows_per_split: int = param(10, "fewest pages in every (source, split)")
    min_text_chars: int = param(100, "shortest acceptable page, in characters")
    max_score: float = param(5.0, "scores lie in [0, max_score]")


@dataclass
class EmbedConfig:
    encoders: dict = param({
        "en": {"model": "embedded:all-minilm-l6-v2", "prefix": "", "max_seq_length": 256},
        "multilingual": {"model": "embedded:multilingual-e5-small", "prefix": "passage: ", "max_seq_length": 256},
    }, "name -> {model, prefix, max_seq_length}: each encoder embeds every page once (cached)")
    batch_size: int = param(32, "pages encoded together")
    bf16: str = param("auto", "bf16 weights (runtimes torch, torch-compile): auto (CUDA, or a CPU with native bf16) | on | off")
    runtime: str = param("torch", "what runs the encoder for embedding, evaluation and serving: torch | "
                                  "torch-compile (the same, compiled by inductor; edu/compiled.py) | "
                                  "onnx-int8 (onnxruntime, int8 per-channel weights; edu/runtime.py)")


@dataclass
class TrainConfig:
    setups: dict = param({
        "en": {"encoder": "en", "train": ["en_llm"]},
        "multilingual": {"encoder": "multilingual", "train": ["en_llm", "da_llm"]},
        "da_human": {"encoder": "multilingual", "train": ["da_human"]},
    }, "name -> {encoder, train: sources}: one model per setup, trained on the train split of its "
       "sources, chosen on their val split")
    heads: list = param(list(HEADS), "heads tried per setup (linear = the reference)")
    ridge_alphas: list = param([0.1, 1.0, 10.0, 100.0], "ridge penalties tried (chosen on validation)")
    mlp_hidden: int = param(64, "hidden units of the MLP head")
    seed: int = param(13, "training seed")
    select_metric: str = param("spearman_within", "validation metric that picks the head (spearman_within: "
                                                   "the mean correlation within each source)")


@dataclass
class EvaluateConfig:
    n_boot: int = param(1000, "bootstrap resamples for the 95% CIs")
    threshold: int = param(3, "binary decision: int_score >= threshold is educational")
    cross_lingual: dict = param({"multilingual": "da_human"},
                                "setup -> source scored whole as a cross-lingual test (never trained on)")


@dataclass
class TrackingConfig:
    experiment: str = param("edu-classifier", "MLflow experiment (training, evaluation and models join one run)")


@dataclass
class RegistryConfig:
    models: dict = param({"multilingual": "fineweb-edu-multilingual", "en": "fineweb-edu-en"},
                         "setup -> registered model name (each gated on its own metrics; the first is "
                         "`tagflow edu predict`'s default)")
    gate_metric: str = param("val/spearman_within", "metric the promotion gate reads (trivial baselines score 0)")
    gate_target: float = param(0.30, "champion only at or beyond this value (direction: see core.gate)")


@dataclass
class JudgeConfig:
    kind: str = param("openai", "openai (any OpenAI-compatible endpoint) | transformers (local model)")
    model: str = param("llama3.3:70b", "model id the endpoint serves, or a local model id")
    base_url: str = param("http://127.0.0.1:11434/v1", "OpenAI-compatible base URL (kind=openai)")
    max_new_tokens: int = param(512, "token budget per judgement")
    requests_per_second: float = param(2.0, "rate limit (0 = none)")
    concurrency: int = param(4, "requests in flight")
    retries: int = param(4, "attempts per page on 429, 5xx or a transport error")
    batch_size: int = param(8, "pages judged between progress saves (transformers: generated together)")


@dataclass
class EduConfig:
    data: DataConfig = field(default_factory=DataConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)


def check(cfg: EduConfig, where: str = "edu") -> None:
    """Names and ranges the config machinery cannot check by type."""
    from ..core.errors import ConfigError

    unknown = [s for s in cfg.data.sources if s not in SOURCES]
    if unknown or not cfg.data.sources:
        raise ConfigError(f"{where}.data.sources: {cfg.data.sources}; choose from {sorted(SOURCES)}")
    if not (0 < cfg.data.val_fraction and 0 < cfg.data.test_fraction
            and cfg.data.val_fraction + cfg.data.test_fraction < 1):
        raise ConfigError(f"{where}.data: val_fraction and test_fraction must be > 0 with a sum below 1")
    for name, enc in cfg.embed.encoders.items():
        if not isinstance(enc, dict) or not isinstance(enc.get("model"), str):
            raise ConfigError(f"{where}.embed.encoders.{name}: needs a 'model' string")
        extra = set(enc) - {"model", "prefix", "max_seq_length"}
        if extra:
            raise ConfigError(f"{where}.embed.encoders.{name}: unknown key(s) {sorted(extra)}")
    if cfg.embed.bf16 not in ("auto", "on", "off"):
        raise ConfigError(f"{where}.embed.bf16: {cfg.embed.bf16!r}; expected auto | on | off")
    if cfg.embed.runtime not in RUNTIMES:
        raise ConfigError(f"{where}.embed.runtime: {cfg.embed.runtime!r}; expected {' | '.join(RUNTIMES)}")
    for name, setup in cfg.train.setups.items():
        if not isinstance(setup, dict) or setup.get("encoder") not in cfg.embed.encoders:
            raise ConfigError(f"{where}.train.setups.{name}: encoder must be one of {sorted(cfg.embed.encoders)}")
        bad = [s for s in setup.get("train") or [] if s not in cfg.data.sources]
        if bad or not setup.get("train"):
            raise ConfigError(f"{where}.train.setups.{name}.train: {setup.get('train')}; "
                              f"choose from edu.data.sources {cfg.data.sources}")
    bad_heads = [h for h in cfg.train.heads if h not in HEADS]
    if bad_heads or not cfg.train.heads:
        raise ConfigError(f"{where}.train.heads: {cfg.train.heads}; choose from {list(HEADS)}")
    for setup, source in cfg.evaluate.cross_lingual.items():
        if setup not in cfg.train.setups or source not in cfg.data.sources:
            raise ConfigError(f"{where}.evaluate.cross_lingual: {setup!r} -> {source!r} names an unknown "
                              "setup or source")
    for setup in cfg.registry.models:
        if setup not in cfg.train.setups:
            raise ConfigError(f"{where}.registry.models: unknown setup {setup!r}; known: {sorted(cfg.train.setups)}")
    selectable = ("spearman", "spearman_within", "macro_f1", "binary_f1", "accuracy")
    if cfg.train.select_metric not in selectable:
        raise ConfigError(f"{where}.train.select_metric: {cfg.train.select_metric!r}; choose from {list(selectable)}")
    if cfg.judge.kind not in ("openai", "transformers"):
        raise ConfigError(f"{where}.judge.kind: {cfg.judge.kind!r}; expected openai | transformers")
