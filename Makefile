# Entry points. Every target sets up the environment first (idempotent: infra/setup.sh does
# nothing when the lock is unchanged), so each works on a fresh clone.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# A local mirror of the public data, used only when the official URL cannot be reached.
MIRROR ?= ../shared/data
DUMP ?= data/unesco-thesaurus/unesco-thesaurus.ttl
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export BENTOML_DO_NOT_TRACK := true
export HF_HUB_DISABLE_TELEMETRY := 1
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup data restore-data repro smoke test lock mlflow-ui serve serve-load bento prefect-server prefect-worker deploy retrain

setup:
	@bash infra/setup.sh

data: setup  ## obtain the thesaurus dump, the edu annotation sets and Reuters-21578 (official URL, else $(MIRROR)) into data/
	@tagflow thesaurus fetch $(if $(wildcard $(MIRROR)),--mirror $(MIRROR))
	@tagflow edu fetch $(if $(wildcard $(MIRROR)),--mirror $(MIRROR))
	@tagflow topics fetch $(if $(wildcard $(MIRROR)),--mirror $(MIRROR))
	@dvc status data | grep -qE "(modified|deleted|new): +data$$" && echo "note: data/ differs from the version in \
	dvc.lock (a new dump?); check and record it with: dvc repro data && git commit dvc.lock" || true

restore-data:  ## put back the last recorded (checked) thesaurus dump, e.g. after a rejected one
	dvc checkout --force $(DUMP)

repro: data  ## the main job: the whole pipeline on the profile named in params.yaml
	dvc repro

smoke: setup  ## benchmark: the smoke pipeline in a scratch clone (wall time, peak memory, no-op time)
	$(BIN)/python benchmarks/pipeline.py --profile smoke

test: setup  ## the test suite (uses the smoke profile; see tests/)
	$(BIN)/pytest -q

lock:  ## re-resolve infra/requirements/requirements.lock from requirements.in
	bash infra/lock.sh

mlflow-ui: setup  ## MLflow UI + tracking server on http://127.0.0.1:5000
	bash infra/mlflow-server.sh

serve: setup  ## the tagger service (champion model) on http://127.0.0.1:3000
	bentoml serve services.tagger_service:Tagger --host 127.0.0.1 --port 3000

serve-load: setup  ## benchmark: the service under 1/8/32 clients + fault cases (cpu tagger built from the dump)
	$(BIN)/python benchmarks/serve_load.py --model cpu --seconds $${SECONDS_PER_LEVEL:-60}

bento: setup  ## package the service as a bento
	bentoml build -f services/bentofile.yaml .

prefect-server: setup  ## Prefect UI/API on http://127.0.0.1:4200
	bash infra/prefect.sh server

prefect-worker: setup  ## a process worker for the tagflow-process pool
	bash infra/prefect.sh worker

deploy: setup  ## tagflow deploy: retrain/<family> per family on the Prefect server (crons from params.yaml)
	bash infra/prefect.sh deploy

retrain: setup  ## one retrain flow run of every family now (dvc pull, repro, push, registry decisions)
	$(BIN)/python -m flows.retrain
