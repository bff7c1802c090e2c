"""Where the tagger's stages read and write, relative to the project root. dvc.yaml names the
same paths; keep the two in step."""
from ..thesaurus.build import CONCEPTS, CONTRACTS_DIR  # noqa: F401 (inputs of this family)

SFT_DIR = "artifacts/sft"
ADAPTER_DIR = "artifacts/tagger"     # the SFT adapter: the llm backend's model
BACKEND_DIR = "artifacts/backend"    # what `tagger_fit` learned for any other backend
RUN_FILE = "artifacts/tagger/run.json"
PREDICTIONS = "artifacts/eval/predictions.jsonl"
DEV_PREDICTIONS = "artifacts/eval/dev_predictions.jsonl"
EVAL_RUN_FILE = "artifacts/eval/run.json"   # the run holding the evaluation (registration logs into it)
REGISTRY_REPORT = "reports/registry.json"
PAIRS = "artifacts/pairs/pairs.jsonl"                 # preference pairs sampled from the SFT model
IPO_DIR = "artifacts/tagger_ipo"     # SFT + IPO: sft/ and ipo/ adapters, tokenizer, tagger.json
IPO_RUN_FILE = "artifacts/tagger_ipo/run.json"
PREF_DIR = "artifacts/pref_eval"     # answers of base / SFT / SFT+IPO, histogram data
IPO_PREDICTIONS = "artifacts/pref_eval/ipo_predictions.jsonl"   # SFT+IPO's tagger on the test split
IPO_REGISTRY_REPORT = "reports/registry_ipo.json"
METRICS_PAIRS = "metrics/pairs.json"
METRICS_IPO = "metrics/ipo.json"
METRICS_PREFERENCE = "metrics/preference.json"
METRICS_TAGGER_IPO = "metrics/tagger_ipo.json"   # SFT+IPO's tagger metrics, as metrics/tagger.json
METRICS_SYNTH = "metrics/synth.json"
METRICS_CONTRACTS = "metrics/contracts_splits.json"
METRICS_TRAIN = "metrics/train.json"
METRICS_FIT = "metrics/fit.json"


def model_dir(backend: str) -> str:
    """Where the configured backend's model lives (bundled into the registered model)."""
    return ADAPTER_DIR if backend.split("@", 1)[0] == "llm" else BACKEND_DIR   # llm or a variant


def uses_adapter(backend: str) -> bool:
    """Whether the backend runs the SFT adapter (llm or a variant): else SFT and IPO are skipped."""
    return model_dir(backend) == ADAPTER_DIR
METRICS_TAGGER = "metrics/tagger.json"
