#!/usr/bin/env bash
# Local Prefect stack for the scheduled retrain (see the docstring of flows/retrain.py):
#   infra/prefect.sh server   API + UI on 127.0.0.1:${PREFECT_PORT:-4200}
#   infra/prefect.sh worker   create the `tagflow-process` pool if missing, then run its flow runs
#   infra/prefect.sh deploy   `tagflow deploy`: retrain/<family> per family, crons from params.yaml
#   infra/prefect.sh run [FAMILY]   start a run of retrain/FAMILY (default: tagger) now
# Extra arguments go to the underlying prefect command (e.g. `worker --run-once`).
# PREFECT_API_URL defaults to the local server; set it to use another one.
set -euo pipefail
cd "$(dirname "$0")/.."   # deploy resolves entrypoints from here; the worker runs flows from here

PREFECT=.venv/bin/prefect
[ -x "$PREFECT" ] || PREFECT=prefect
TAGFLOW=.venv/bin/tagflow
[ -x "$TAGFLOW" ] || TAGFLOW=tagflow
POOL=tagflow-process
PORT=${PREFECT_PORT:-4200}
export PREFECT_SERVER_ANALYTICS_ENABLED=false   # no internet: do not try to phone home
export DVC_NO_ANALYTICS=${DVC_NO_ANALYTICS:-1}

use_server() {
  export PREFECT_API_URL=${PREFECT_API_URL:-http://127.0.0.1:$PORT/api}
}

ensure_pool() {
  "$PREFECT" work-pool inspect "$POOL" >/dev/null 2>&1 \
    || "$PREFECT" work-pool create "$POOL" --type process
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  server)
    exec "$PREFECT" server start --host 127.0.0.1 --port "$PORT" "$@" ;;
  worker)
    use_server; ensure_pool
    exec "$PREFECT" worker start --pool "$POOL" "$@" ;;
  deploy)
    use_server
    exec "$TAGFLOW" deploy "$@" ;;
  run)
    use_server
    family=${1:-tagger}
    [ $# -gt 0 ] && shift
    exec "$PREFECT" deployment run "retrain/$family" "$@" ;;
  *)
    echo "usage: $0 server|worker|deploy|run [FAMILY] [args...]" >&2
    exit 2 ;;
esac
