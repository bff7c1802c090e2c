"""Where the tagger's stages read and write, relative to the project root. dvc.yaml names the
same paths; keep the two in step."""
from ..thesaurus.build import CONCEPTS, CONTRACTS_DIR  # noqa: F401 (inputs of this family)

SFT_DIR = "artifacts/sft"
ADAPTER_DIR = "artifacts/tagger"     # the SFT adapter: the llm backend's model
BACKEND_DIR = "artifacts/backend"    # what `tagger_fit` learned for any other backend
RUN_FILE = "artifacts/tagger/run.json"
PREDICTIONS = "artifacts/eval/predictions.jsonl"
DEV_PREDICTIONS = "artifacts/eval/dev_predictions.jsonl"
REGISTRY_REPORT = "reports/registry.json"
METRICS_SYNTH = "metrics/synth.json"
METRICS_CONTRACTS = "metrics/contracts_splits.json"
METRICS_TRAIN = "metrics/train.json"
METRICS_FIT = "metrics/fit.json"


def model_dir(backend: str) -> str:
    """Where the configured backend's model lives (bundled into the registered model)."""
    return ADAPTER_DIR if backend.split("@", 1)[0] == "llm" else BACKEND_DIR   # llm or a variant
METRICS_TAGGER = "metrics/tagger.json"
