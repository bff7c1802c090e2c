"""The `tagger` section of params.yaml: one dataclass per pipeline step of the tagger family
(TRL's `<algo>_config.py` style: every field has a default and a help text)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import param
from ..core.distributed import check_processes
from ..core.errors import ConfigError

# The reference system's prompt. It is written into the training data, recorded with the adapter
# and in the registered model card, so a served model always runs the prompt it was trained on.
DEFAULT_PROMPT = "Extract UNESCO Thesaurus keywords from this text:\n\n{text}"
REFINEMENTS = ("none", "specific", "balanced", "broad")   # see tagger.pipeline.refine
AGGREGATIONS = ("score", "frequency")                     # see tagger.pipeline.aggregate
PAIR_MODES = ("keywords", "tags")                         # see tagger.tagmode
PROCESSES_HELP = ("training processes, one per GPU (accelerate launch; on a machine without CUDA, CPU "
                  "processes over gloo); 1 = train in the stage's own process")
# The semantic-tagging-with-IPO recipe's own task: free tags on any text (tagger.tagmode).
TAGS_PROMPT = "Give at most three short tags for this text, as [tag1][tag2][tag3]:\n\n{text}"


@dataclass
class TeacherConfig:
    kind: str = param("transformers", "transformers (local model) or openai (OpenAI-compatible endpoint)")
    model: str = param("embedded:smollm2-135m-instruct", "model id: embedded:<name>, hub name or local dir")
    base_url: str = param("http://127.0.0.1:11434/v1", "OpenAI-compatible base URL (kind=openai)")
    temperature: float = param(0.7, "sampling temperature")
    max_new_tokens: int = param(360, "token budget per document")
    batch_size: int = param(8, "documents generated together")


@dataclass
class SynthConfig:
    seed: int = param(13, "seed for concept sampling and generation")
    n_train: int = param(480, "training examples")
    n_val: int = param(60, "validation examples")
    n_test: int = param(60, "test examples")
    min_concepts: int = param(3, "fewest concepts per document")
    max_concepts: int = param(8, "most concepts per document")
    target_words: int = param(270, "document length asked of the teacher")
    prompt: str = param(DEFAULT_PROMPT, "the tagging instruction; {text} is replaced by the document")
    describe_subjects: bool = param(False, "give the teacher each concept's alt labels and scope note")
    min_discussed: float = param(0.0, "drop a gold concept the document does not discuss (encoder "
                                      "similarity below this; 0 = off); keep documents left with enough")
    teacher: TeacherConfig = field(default_factory=TeacherConfig)


@dataclass
class ContractsConfig:
    min_keywords: int = param(3, "fewest gold keywords per example")
    max_keywords: int = param(8, "most gold keywords per example")
    min_text_words: int = param(40, "shortest acceptable document, in words")


@dataclass
class SFTConfig:
    base_model: str = param("embedded:smollm2-135m-instruct", "base model: embedded:<name>, hub name or dir")
    seed: int = param(13, "training seed")
    epochs: float = param(1, "passes over the training split")
    max_steps: int = param(-1, "if > 0, stop after this many optimizer steps")
    learning_rate: float = param(2e-4, "LoRA learning rate")
    batch_size: int = param(4, "per-device batch size")
    grad_accum: int = param(1, "gradient accumulation steps")
    max_length: int = param(768, "longest tokenized example")
    lora_r: int = param(16, "LoRA rank")
    lora_alpha: int = param(32, "LoRA alpha")
    lora_dropout: float = param(0.05, "LoRA dropout")
    load_in_4bit: bool = param(False, "QLoRA: 4-bit base weights (CUDA + bitsandbytes only)")
    processes: int = param(1, PROCESSES_HELP)

    def __post_init__(self) -> None:
        check_processes(self.processes, "tagger.sft")


@dataclass
class TagModeConfig:
    """The recipe's tag mode (tagger.pairs.mode: tags): free tags on texts outside the thesaurus."""
    prompt: str = param(TAGS_PROMPT, "the tag instruction; {text} is replaced by the text")
    texts: str = param("data/reuters21578", "text source: a Reuters-21578 SGML folder (bodies), a CSV with a "
                                            "`text` column (edu pages) or a JSONL file with a `text` field")
    eval_texts: int = param(60, "texts held out for tagger_pref_evaluate (first by content hash); never paired")
    max_text_chars: int = param(1500, "a text is cut to this many characters (at a word) before prompting")
    max_tags: int = param(3, "a valid answer has 1..max_tags tags")
    max_tag_words: int = param(3, "a valid tag has at most this many words")
    max_tag_chars: int = param(30, "a valid tag has at most this many characters")
    min_tag_letters: int = param(2, "a valid tag has at least this many letters ([1], [A] are not tags)")

    def __post_init__(self) -> None:
        for key in ("max_tags", "max_tag_words", "max_tag_chars", "max_text_chars", "min_tag_letters"):
            if getattr(self, key) < 1:
                raise ConfigError(f"tagger.pairs.tags.{key}: expected at least 1, got {getattr(self, key)}")
        if "{text}" not in self.prompt:
            raise ConfigError("tagger.pairs.tags.prompt: must contain {text}")


@dataclass
class PairsConfig:
    """Preference pairs sampled from the SFT model (stage tagger_pairs)."""
    mode: str = param("keywords", "keywords (JSON keyword arrays on the synthetic split) | tags (the "
                                  "recipe's [tag1][tag2][tag3] on the texts of `tags.texts`)")
    k: int = param(4, "generations sampled per training prompt (at least 2)")
    max_prompts: int = param(0, "sample for the first N training prompts only (0 = all)")
    temperature: float = param(1.0, "sampling temperature")
    max_new_tokens: int = param(96, "token budget per generation")
    batch_size: int = param(8, "prompts generated together")
    seed: int = param(13, "sampling seed (round j of k is seeded seed + j)")
    max_keywords: int = param(10, "a valid answer is a JSON array of 1..max_keywords strings")
    format_share: float = param(0.2, "most format pairs (one valid, one invalid answer) as a share of all pairs")
    min_margin: float = param(0.0, "semantic pairs: least cosine difference between chosen and rejected")
    pairs_per_prompt: int = param(2, "most semantic pairs per prompt (one per margin bin)")
    balance_margins: bool = param(True, "cut the larger margin bin (small/large, split at the median) to the smaller")
    encoder: str = param("embedded:all-minilm-l6-v2", "sentence encoder of the cosine signal")
    window_chars: int = param(500, "texts longer than this are embedded in windows and averaged")
    min_pairs: int = param(1, "contract: fewest pairs")
    include_gold: bool = param(False, "the split's reference answer is one more candidate (off-policy; the "
                                      "smoke profile's barely trained model rarely answers valid JSON)")
    tags: TagModeConfig = field(default_factory=TagModeConfig)

    def __post_init__(self) -> None:
        if self.mode not in PAIR_MODES:
            raise ConfigError(f"tagger.pairs.mode: expected one of {list(PAIR_MODES)}, got {self.mode!r}")
        if self.k < 2:
            raise ConfigError(f"tagger.pairs.k: a pair needs at least 2 generations per prompt, got {self.k}")
        if not 0.0 <= self.format_share <= 1.0:
            raise ConfigError(f"tagger.pairs.format_share: expected a share in [0, 1], got {self.format_share}")


@dataclass
class IPOConfig:
    """IPO (TRL DPOTrainer, loss ipo) with a new LoRA on the SFT-merged model (stage tagger_ipo)."""
    beta: float = param(0.1, "IPO regularization (TRL DPOConfig.beta)")
    seed: int = param(13, "training seed")
    epochs: float = param(1, "passes over the pairs")
    max_steps: int = param(-1, "if > 0, stop after this many optimizer steps")
    learning_rate: float = param(5e-5, "LoRA learning rate")
    batch_size: int = param(4, "pairs per device batch")
    grad_accum: int = param(1, "gradient accumulation steps")
    max_length: int = param(768, "longest tokenized prompt + answer")
    lora_r: int = param(16, "LoRA rank")
    lora_alpha: int = param(32, "LoRA alpha")
    lora_dropout: float = param(0.05, "LoRA dropout")
    processes: int = param(1, PROCESSES_HELP)

    def __post_init__(self) -> None:
        check_processes(self.processes, "tagger.ipo")


@dataclass
class PrefEvaluateConfig:
    """Base vs SFT vs SFT+IPO, free greedy generation (stage tagger_pref_evaluate)."""
    max_new_tokens: int = param(96, "token budget per answer")
    batch_size: int = param(8, "prompts generated together")
    bins: int = param(20, "histogram bins of the tag-to-text cosine")


@dataclass
class InferConfig:
    """How a document becomes concepts; shared by evaluation and serving, and stored in the
    registered model card (the served model reads it from there, not from params.yaml)."""
    backend: str = param("llm", "tagger backend (see tagflow.tagger.backends): llm")
    backends: dict = param({"llm": {}}, "parameters per backend, over each backend's DEFAULT_PARAMETERS")
    chunk_chars: int = param(3000, "characters per chunk for long documents")
    chunk_overlap: int = param(500, "overlap between consecutive chunks")
    aggregate: str = param("score", "chunks to document: score (summed score) | frequency (chunks suggesting it)")
    top_n: int = param(10, "concepts returned per document")
    refine: str = param("specific", "ancestor/descendant pairs: none | specific | balanced | broad")
    label_lang: str = param("en", "language of the returned labels: en | fr | es | ar | ru")

    def __post_init__(self) -> None:
        choices = {"refine": REFINEMENTS, "aggregate": AGGREGATIONS}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"tagger.infer.{key}: expected one of {list(allowed)}, got {getattr(self, key)!r}")

    def backend_params(self) -> dict:
        return dict(self.backends.get(self.backend) or {})


@dataclass
class EvaluateConfig:
    split: str = param("test", "synthetic split to evaluate on")
    dev_set: str = param("devsets/tagger", "folder of hand-indexed *.jsonl documents ('' to skip)")


@dataclass
class TrackingConfig:
    experiment: str = param("unesco-tagger", "MLflow experiment of the training run (evaluation and model join it)")


@dataclass
class RegistryConfig:
    model_name: str = param("unesco-tagger", "registered model name in MLflow")
    gate_metric: str = param("f1_doc", "metric the promotion gate reads")
    gate_target: float = param(0.30, "champion only at or beyond this value (direction: see core.gate)")


@dataclass
class TaggerConfig:
    synth: SynthConfig = field(default_factory=SynthConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    ipo: IPOConfig = field(default_factory=IPOConfig)
    pref_evaluate: PrefEvaluateConfig = field(default_factory=PrefEvaluateConfig)
    infer: InferConfig = field(default_factory=InferConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
