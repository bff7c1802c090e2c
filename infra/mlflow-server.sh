#!/usr/bin/env bash
# MLflow UI + REST API on http://127.0.0.1:${MLFLOW_PORT:-5000} over the project store (mlflow.db,
# ./mlartifacts). One worker, no job runner; the command is built by tagflow.core.registry.server_command.
# Clients then use: export MLFLOW_TRACKING_URI=http://127.0.0.1:${MLFLOW_PORT:-5000}
set -euo pipefail
cd "$(dirname "$0")/.." && exec .venv/bin/tagflow mlflow-server --port "${MLFLOW_PORT:-5000}"
