"""Where the tagger's stages read and write, relative to the project root. dvc.yaml names the
same paths; keep the two in step."""
from ..thesaurus.build import CONCEPTS, CONTRACTS_DIR  # noqa: F401 (inputs of this family)

SFT_DIR = "artifacts/sft"
ADAPTER_DIR = "artifacts/tagger"
RUN_FILE = "artifacts/tagger/run.json"
PREDICTIONS = "artifacts/eval/predictions.jsonl"
REGISTRY_REPORT = "reports/registry.json"
METRICS_SYNTH = "metrics/synth.json"
METRICS_CONTRACTS = "metrics/contracts_splits.json"
METRICS_TRAIN = "metrics/train.json"
METRICS_TAGGER = "metrics/tagger.json"
