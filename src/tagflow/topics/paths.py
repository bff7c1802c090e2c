"""Where the topics stages read and write, relative to the project root (dvc.yaml names the same)."""
TABLE = "artifacts/topics/data/reuters.parquet"
LABELS = "artifacts/topics/data/labels.json"
CONTRACTS_DIR = "reports/contracts/topics"
MODELS_DIR = "artifacts/topics/models"          # one folder per candidate
CV_THRESHOLDS = "cv_thresholds.json"            # in a candidate's folder: thresholds from training CV
RUN_FILE = "artifacts/topics/models/run.json"
EVAL_DIR = "artifacts/topics/eval"              # predictions JSONL + thresholds per candidate
REGISTRY_REPORT = "reports/topics_registry.json"
METRICS_DATA = "metrics/topics_data.json"
METRICS_CONTRACTS = "metrics/topics_contracts.json"
METRICS_TRAIN = "metrics/topics_train.json"
METRICS = "metrics/topics.json"


def model_dir(candidate: str) -> str:
    return f"{MODELS_DIR}/{candidate}"


def thresholds_file(candidate: str) -> str:
    return f"{EVAL_DIR}/{candidate}/thresholds.json"


def cv_thresholds_file(candidate: str) -> str:
    return f"{model_dir(candidate)}/{CV_THRESHOLDS}"
