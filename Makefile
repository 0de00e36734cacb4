# The two commands the README opens with: `make up` and `make test`.
# Both make the virtualenv .venv from pyproject.toml first, when it is missing or out of date.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up demo test lint bench-ingress bench-status bench-e2e bench-sender bench-cost clean \
	compose-up compose-down compose-roll-ingress deploy-test

$(BIN)/wapipe: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# The sender's shard queues hang off RabbitMQ's consistent-hash exchange (a plugin it ships):
# turn it on where the broker is local, as the management plugin for the tests.
PLUGINS := rabbitmq_management rabbitmq_consistent_hash_exchange
ENABLE_PLUGINS := -@command -v rabbitmq-plugins >/dev/null && rabbitmq-plugins enable --quiet $(PLUGINS) >/dev/null 2>&1

up: $(BIN)/wapipe
	$(ENABLE_PLUGINS)
	$(BIN)/wapipe up

# With `make up` running (in another terminal): a customer talks to the example bot.
demo: $(BIN)/wapipe
	$(BIN)/wapipe demo

# The tests give each test a vhost through RabbitMQ's management API (a no-op when the plugins
# are on already, or when rabbitmq-plugins is not here).
test: $(BIN)/wapipe
	$(ENABLE_PLUGINS)
	$(BIN)/pytest

lint: $(BIN)/wapipe
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-ingress: $(BIN)/wapipe
	$(BIN)/python -m tests.bench.ingress

bench-status: $(BIN)/wapipe
	$(BIN)/python -m tests.bench.status_worker

bench-e2e: $(BIN)/wapipe
	$(BIN)/python -m tests.bench.end_to_end

# One sender at 20, 80 and 1,000 messages/s against the sandbox, and its ceiling (taskset needed).
bench-sender: $(BIN)/wapipe
	$(ENABLE_PLUGINS)
	$(BIN)/python -m tests.bench.sender

# The whole pipeline at a steady load: each service's CPU per event beside its anchor, and the
# highest rate it holds (tests/bench/results/cost.md).
bench-cost: $(BIN)/wapipe
	$(ENABLE_PLUGINS)
	$(BIN)/python -m tests.bench.cost --ceiling

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# The published contracts (schemas/*.schema.json, docs/asyncapi.json), written from the Structs
# and shared/topology.py; a unit test fails while they are stale.
.PHONY: schemas
schemas: $(BIN)/wapipe
	$(BIN)/python -m wapipe.shared.schemas.export

# The deployable stack (deploy/): a Docker engine, Compose and local images made from Debian's
# packages when missing (deploy/scripts/engine.sh, as root; no image registry is needed), the
# secrets made when missing, wapipe's image built (once), every service up and healthy. Each step
# exits non-zero when Compose fails (deploy/scripts/compose.sh keeps its status).
#   make compose-up COMPOSE_PROFILES=observability   # + Prometheus and Grafana (Grafana needs a registry)
#   make compose-up WAPIPE_COMPOSE_CLUSTER=1         # three RabbitMQ nodes (deploy/compose.cluster.yaml)
COMPOSE_FILES := -f deploy/compose.yaml $(if $(WAPIPE_COMPOSE_CLUSTER),-f deploy/compose.cluster.yaml)
COMPOSE := deploy/scripts/compose.sh $(COMPOSE_FILES)
WAPIPE_BASE_IMAGE ?= wapipe-local/python:3.13
export WAPIPE_BASE_IMAGE

compose-up: $(BIN)/wapipe
	deploy/scripts/engine.sh
	deploy/scripts/secrets.sh
	$(COMPOSE) up --build --detach --wait --wait-timeout 240
	$(COMPOSE) ps

# A new ingress container beside the old one, then the old one stopped: no webhook refused or
# cut (deploy/scripts/roll.sh; docs/operations.md, Rolling a service).
compose-roll-ingress:
	deploy/scripts/roll.sh $(COMPOSE_FILES)

# Every service of every profile and variant, then the engine if engine.sh started it (and no
# container of another project still runs on it).
compose-down:
	@if docker info >/dev/null 2>&1; then deploy/scripts/compose.sh -f deploy/compose.yaml \
		-f deploy/compose.cluster.yaml --profile observability down --remove-orphans; fi
	deploy/scripts/engine.sh stop

# The deploy tests alone (make test runs them too), required: they fail where they cannot run.
deploy-test: $(BIN)/wapipe
	deploy/scripts/engine.sh
	WAPIPE_DEPLOY_TESTS=required $(BIN)/pytest tests/deploy
