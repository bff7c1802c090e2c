#!/usr/bin/env bash
# Create .venv from the lock. Idempotent: does nothing when the lock has not changed
# since the last successful install (stamp file holds the lock's hash).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
LOCK=infra/requirements/requirements.lock
STAMP=.venv/.installed
want=$(cat "$LOCK" infra/setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then exit 0; fi

start=$(date +%s)
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip uv
# torch on its own: the CPU wheel where the machine provides one, the platform's default
# build (CUDA on GPU hosts) otherwise. It stays out of the lock for that reason.
TORCH=${TORCH_SPEC:-torch==2.13.0}
.venv/bin/python -m pip install -q "$TORCH"
# uv does not read pip's configuration; forward find-links if the machine sets one.
export UV_FIND_LINKS=${UV_FIND_LINKS:-${PIP_FIND_LINKS:-}}
[ -n "$UV_FIND_LINKS" ] || unset UV_FIND_LINKS
VIRTUAL_ENV=$PWD/.venv .venv/bin/uv pip install -q --compile-bytecode \
  -r "$LOCK" --override infra/requirements/overrides.txt
VIRTUAL_ENV=$PWD/.venv .venv/bin/uv pip install -q --no-deps -e .
echo "$want" > "$STAMP"
echo "environment ready in $(( $(date +%s) - start ))s"
