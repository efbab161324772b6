# contactq: `make run` to see it work, `make test` to prove it. Everything installs itself on a fresh Debian machine.
VENV ?= .venv
BIN := $(VENV)/bin
export VENV

.PHONY: run up down test lint bench venv redis rabbitmq activemq chromium

run: up
	$(BIN)/contactq demo
	scripts/stack.sh serve

up: venv redis activemq
	scripts/stack.sh up

down:
	scripts/stack.sh down
	scripts/activemq.sh down

# Everything on the Redis broker, then the end-to-end tests again with Celery on RabbitMQ, and again with the workers
# reaching the simulated WeChat over the Gewechat HTTP API.
test: venv redis rabbitmq activemq chromium lint
	$(BIN)/pytest
	CONTACTQ_TEST_BROKER=rabbitmq $(BIN)/pytest tests/tasks tests/bridge
	CONTACTQ_TEST_PROTOCOL=gewe $(BIN)/pytest tests/tasks tests/bridge

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	scripts/check-compose.sh

bench: venv redis activemq
	$(BIN)/python bench/sync_contact.py
	$(BIN)/python bench/bridge_search.py
	$(BIN)/python bench/gewe_backend.py
	$(BIN)/python bench/bridge_scale.py

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && python3 -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

redis:
	scripts/ensure-redis.sh

rabbitmq:
	scripts/ensure-rabbitmq.sh

activemq:
	scripts/activemq.sh up

chromium:
	scripts/ensure-chromium.sh
