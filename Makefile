# KAYA787 — the two commands: `make up` (the platform) and `make test` (the suite).
SHELL := /bin/bash
PROFILE ?= local
VENV := .venv/bin
PYTEST_ARGS ?=

.PHONY: help bootstrap up up-fg down status lint typecheck schemas unit integration integration-kafka test bench bench-transfers bench-compare bench-floor chaos soak clean

help:
	@echo "make up [PROFILE=local]  start the platform: brokers, Dapr control plane, apps with sidecars,"
	@echo "                         gateway, Jaeger, Prometheus (PROFILE=kafka: Kafka + PostgreSQL)"
	@echo "make down                stop exactly what make up started"
	@echo "make status              show every process, its state and its log"
	@echo "make test                ruff + mypy + unit + integration + e2e on local, then e2e,"
	@echo "                         ledger and broker tests on kafka"
	@echo "make bench               latency of the hot paths, then the open-loop transfer run"
	@echo "                         (bench-transfers) on the running profile (var/reports/)"
	@echo "make bench-transfers     transfers offered at fixed rates through the gateway:"
	@echo "                         completions/s, errors, p50/p99, CPU-ms per transfer, plot"
	@echo "make bench-compare       Redis Streams vs Kafka, tracing on vs off (restarts the platform)"
	@echo "make bench-floor         what each part of a transfer costs alone, and the floor they set"
	@echo "make chaos               kill -9 each process under load; lost/doubled table (var/reports/)"
	@echo "make soak                30 min of transfers at half capacity: latency, errors, RSS and"
	@echo "                         CPU over time, bounds checked (SOAK_ARGS=\"--minutes 3 --rate 10\")"
	@echo "make bootstrap           install/build everything (idempotent, cached)"
	@echo "make schemas             regenerate the events' JSON Schemas (libs/contracts/schemas/)"
	@echo "                         from the kaya787_contracts models"
	@echo "make k8s-sim[-down|-status]  a local Kubernetes control plane (kwok nodes) with Dapr's"
	@echo "                         operator and injector (builds them once, ~20 min cold)"
	@echo "make test-k8s            apply both overlays to the sim and test them (starts/stops it)"

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

# The events' JSON Schemas, generated from the contracts (a unit test fails when they drift).
schemas:
	@$(VENV)/python -m kaya787_contracts.export

unit:
	@echo "==> unit tests"
	@$(VENV)/pytest tests/unit $(PYTEST_ARGS)

integration:
	@echo "==> integration and end-to-end tests, profile local (real daprd, Redis Streams, control plane)"
	@KAYA787_PROFILE=local $(VENV)/pytest tests/integration tests/e2e $(PYTEST_ARGS)

# The same end-to-end tests, the broker-facing ones (the event contracts read back from
# Kafka among them) and the ledger's (money and its store), on Kafka + PostgreSQL.
integration-kafka:
	@echo "==> end-to-end and broker tests, profile kafka (real Kafka, PostgreSQL)"
	@KAYA787_PROFILE=kafka $(VENV)/pytest tests/e2e tests/integration/test_pubsub.py \
		tests/integration/test_kafka.py tests/integration/test_event_contracts.py \
		tests/integration/test_observability.py tests/integration/test_ledger.py \
		tests/integration/test_state_etag.py tests/integration/test_chaos.py \
		$(PYTEST_ARGS)

test: bootstrap lint typecheck unit integration integration-kafka

clean: down
	rm -rf var

bench: bootstrap
	@$(VENV)/python -m tests.bench $(BENCH_ARGS)
	@$(VENV)/python -m tests.bench.transfers $(TRANSFER_ARGS)

# Open loop through the gateway (TRANSFER_ARGS="--rates 50,100 --seconds 10" for a short run).
bench-transfers: bootstrap
	@$(VENV)/python -m tests.bench.transfers $(TRANSFER_ARGS)

# What the parts of a transfer cost alone (edge + hop, invocation, state write), and the
# floor they put under one transfer, on the running platform (FLOOR_ARGS="--rate 50").
bench-floor: bootstrap
	@$(VENV)/python -m tests.bench.floor $(FLOOR_ARGS)

# kill -9 each process in turn under a steady load of transfers; a table of what clients saw
# and what was lost or doubled (CHAOS_ARGS="--profile kafka", "--faults app-accounts,redis").
chaos: bootstrap
	@$(VENV)/python -m tests.chaos $(CHAOS_ARGS)
# Transfers at a fixed rate for a long while (default 30 min at half the measured capacity)
# with latency, errors and every process's RSS/CPU sampled over time and checked against
# bounds at the end (exit 1 on a FAIL): SOAK_ARGS="--minutes 3 --rate 10", --help for all.
soak: bootstrap
	@$(VENV)/python -m tests.bench.soak $(SOAK_ARGS)

# Two set-ups measured in one run (restarts the platform for each): Redis Streams vs Kafka
# (publish -> processed latency, events/s) and tracing on vs off (transfers/s).
bench-compare: bootstrap
	@$(VENV)/python -m tests.bench.compare $(BENCH_ARGS)

# A local Kubernetes control plane (etcd, kube-apiserver/-controller-manager/-scheduler, kwok
# fake nodes, Dapr's Sentry/operator/injector) as processes on 127.0.0.1: k8s/README.md.
.PHONY: k8s-sim k8s-sim-up k8s-sim-down k8s-sim-status test-k8s
k8s-sim k8s-sim-up:
	@bash tools/k8s-sim/sim.sh up

k8s-sim-down:
	@bash tools/k8s-sim/sim.sh down

k8s-sim-status:
	@bash tools/k8s-sim/sim.sh status

# Both overlays applied for real to the simulator (started here if it is not running, and
# then stopped again).
test-k8s:
	@bash tools/k8s-sim/test-k8s.sh $(PYTEST_ARGS)
