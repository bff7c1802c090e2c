"""The `topics` section of params.yaml: one dataclass per pipeline step of the topics family."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import param

SPLITS = ("train", "validation", "test")
LABEL_SETS = ("all", "top10")
CANDIDATES = ("svm", "transformer")


@dataclass
class DataConfig:
    url: str = param("https://kdd.ics.uci.edu/databases/reuters21578/reuters21578.tar.gz",
                     "official Reuters-21578 distribution (tar.gz of SGML files)")
    raw_dir: str = param("data/reuters21578", "where `tagflow topics fetch` puts the reut2-*.sgm files")
    seed: int = param(13, "seed of the validation draw")
    val_fraction: float = param(0.15, "share of the ModApte training documents held out for validation")
    test_split: str = param("none", "none (validation only) | modapte (LEWISSPLIT=TEST, when the SGML has it)")
    label_set: str = param("all", "all: every topic with >= 1 training doc (and >= 1 test doc when a "
                                  "test split exists: the usual 90) | top10: the 10 most frequent")
    max_train_docs: int = param(0, "if > 0, keep this many training documents (smoke runs)")
    max_val_docs: int = param(0, "if > 0, keep this many validation documents (smoke runs)")


@dataclass
class ContractsConfig:
    min_train_docs: int = param(1000, "fewest training documents")
    min_val_docs: int = param(100, "fewest validation documents")
    min_labels: int = param(10, "fewest labels in the label set")
    max_empty_body_share: float = param(0.15, "most documents allowed an empty body (title-only briefs)")


@dataclass
class SvmConfig:
    C: float = param(1.0, "LinearSVC regularization")
    ngram_max: int = param(2, "word n-grams 1..ngram_max")
    min_df: int = param(1, "terms in fewer documents are dropped")
    sublinear_tf: bool = param(True, "1 + log(tf)")
    class_weight: str = param("none", "none | balanced (each label's positives weighted by its rarity)")
    threshold_folds: int = param(0, "if >= 2: per-class thresholds tuned on this many folds' cross-validated "
                                    "scores over the training split (folds + 1 fits); 0: tuned on validation")


@dataclass
class TransformerConfig:
    backbone: str = param("embedded:all-minilm-l6-v2", "embedded:<name>, hub name or local folder "
                          "(encoders and decoders alike: AutoModelForSequenceClassification)")
    seed: int = param(13, "training seed")
    max_length: int = param(128, "tokens read per document (title + body)")
    batch_size: int = param(8, "documents per step")
    learning_rate: float = param(1e-3, "LoRA learning rate")
    head_learning_rate: float = param(3e-3, "classification head learning rate (trained from scratch)")
    pooling: str = param("auto", "auto (mean for encoders, model for decoders) | mean (token states "
                                 "averaged over the attention mask) | model (the architecture's own head)")
    epochs: float = param(2, "passes over the training split")
    max_steps: int = param(-1, "if > 0, stop after this many steps")
    eval_every: int = param(200, "steps between validation checks (early stopping)")
    patience: int = param(3, "checks without a better validation micro-F1 before stopping")
    max_minutes: float = param(0, "if > 0, stop training after this long (a last check; best kept)")
    lora_r: int = param(16, "LoRA rank")
    lora_alpha: int = param(32, "LoRA alpha")
    lora_dropout: float = param(0.05, "LoRA dropout")
    load_in_4bit: bool = param(False, "QLoRA: 4-bit base weights (CUDA + bitsandbytes only)")
    threads: int = param(0, "CPU threads for torch (0 = torch's default); 1 is ~4x faster per step "
                            "when other jobs share the cores (README)")
    threshold_folds: int = param(0, "as the svm's (each fold trains the transformer again); 0: tuned on validation")


@dataclass
class TrainConfig:
    candidates: list = param(["svm", "transformer"], "models trained side by side (svm | transformer)")
    svm: SvmConfig = field(default_factory=SvmConfig)
    transformer: TransformerConfig = field(default_factory=TransformerConfig)


@dataclass
class EvaluateConfig:
    bootstrap: int = param(1000, "bootstrap resamples of documents for the 95% CIs")
    select_metric: str = param("validation/micro_f1_tuned", "metric that picks the candidate to register")


@dataclass
class TrackingConfig:
    experiment: str = param("reuters-topics", "MLflow experiment (training, evaluation and model join one run)")


@dataclass
class RegistryConfig:
    model_name: str = param("reuters-topics", "registered model name in MLflow")
    gate_metric: str = param("validation/micro_f1_tuned", "metric the promotion gate reads")
    gate_target: float = param(0.80, "champion only at or beyond this value")
    guard_metrics: list = param(["validation/macro_f1_tuned"], "metrics that must not regress "
                                "against the champion's (direction from the name)")


@dataclass
class TopicsConfig:
    data: DataConfig = field(default_factory=DataConfig)
    contracts: ContractsConfig = field(default_factory=ContractsConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)


def check(cfg: TopicsConfig, where: str = "topics") -> None:
    """Names the config machinery cannot check by type."""
    from ..core.errors import ConfigError

    if cfg.data.test_split not in ("none", "modapte"):
        raise ConfigError(f"{where}.data.test_split: {cfg.data.test_split!r}; expected none | modapte")
    if cfg.data.label_set not in LABEL_SETS:
        raise ConfigError(f"{where}.data.label_set: {cfg.data.label_set!r}; expected one of {list(LABEL_SETS)}")
    if not 0.0 < cfg.data.val_fraction < 1.0:
        raise ConfigError(f"{where}.data.val_fraction: {cfg.data.val_fraction} must be in (0, 1)")
    unknown = [c for c in cfg.train.candidates if c not in CANDIDATES]
    if unknown or not cfg.train.candidates:
        raise ConfigError(f"{where}.train.candidates: {cfg.train.candidates}; choose from {list(CANDIDATES)}")
    for kind in CANDIDATES:
        folds = getattr(cfg.train, kind).threshold_folds
        if folds == 1 or folds < 0:
            raise ConfigError(f"{where}.train.{kind}.threshold_folds: {folds}; expected 0 (tune on "
                              "validation) or at least 2")
