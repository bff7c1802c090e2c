"""Where the edu stages read and write, relative to the project root (dvc.yaml names the same)."""
TABLE = "artifacts/edu/data/annotations.parquet"
CONTRACTS_DIR = "reports/contracts/edu"
EMBED_DIR = "artifacts/edu/embeddings"          # one cache per encoder (+ prefix, length, precision)
MODELS_DIR = "artifacts/edu/models"             # one folder per setup: head + card
RUN_FILE = "artifacts/edu/models/run.json"
EVAL_DIR = "artifacts/edu/eval"                 # predictions per setup and split, confusion CSVs
EVAL_RUN_FILE = "artifacts/edu/eval/run.json"   # the run holding the evaluation (registration logs into it)
PLOTS_DIR = "artifacts/edu/plots"               # confusion matrices (DVC plots + MLflow images)
REGISTRY_REPORT = "reports/edu_registry.json"
METRICS_DATA = "metrics/edu_data.json"
METRICS_CONTRACTS = "metrics/edu_contracts.json"
METRICS_EMBED = "metrics/edu_embed.json"
METRICS_TRAIN = "metrics/edu_train.json"
METRICS = "metrics/edu.json"


def model_dir(setup: str) -> str:
    return f"{MODELS_DIR}/{setup}"
