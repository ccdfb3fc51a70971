# KAYA787 — the two commands: `make up` (the platform) and `make test` (the suite).
SHELL := /bin/bash
PROFILE ?= local
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: help bootstrap up up-fg down status lint typecheck unit integration test bench clean

help:
	@echo "make up [PROFILE=local]  start Redis, the Dapr control plane and all apps with sidecars"
	@echo "make down                stop exactly what make up started"
	@echo "make status              show every process, its state and its log"
	@echo "make test                ruff + mypy + unit + integration + e2e (starts what it needs)"
	@echo "make bench               latency table of the hot paths (writes var/reports/)"
	@echo "make bootstrap           install/build everything (idempotent, cached)"

bootstrap:
	@bash tools/bootstrap.sh

up: bootstrap
	@$(VENV)/kaya787 up --profile $(PROFILE)

up-fg: bootstrap
	@$(VENV)/kaya787 up --profile $(PROFILE) --foreground

down:
	@if [ -x $(VENV)/kaya787 ]; then $(VENV)/kaya787 down; else echo "nothing to stop (not bootstrapped)"; fi

status:
	@$(VENV)/kaya787 status

lint:
	@echo "==> ruff"
	@$(VENV)/ruff check .
	@$(VENV)/ruff format --check .

typecheck:
	@echo "==> mypy (strict)"
	@$(VENV)/mypy

unit:
	@echo "==> unit tests"
	@$(VENV)/pytest tests/unit $(PYTEST_ARGS)

integration:
	@echo "==> integration and end-to-end tests (real daprd, Redis, control plane)"
	@$(VENV)/pytest tests/integration tests/e2e $(PYTEST_ARGS)

test: bootstrap lint typecheck unit integration

clean: down
	rm -rf var

bench: bootstrap
	@$(VENV)/python -m tests.bench $(BENCH_ARGS)
