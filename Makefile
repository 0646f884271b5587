# Two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A fresh MariaDB database per test run, dropped afterwards (see tests/conftest.py).
TEST_MYSQL_URL ?= mysql://root:@127.0.0.1:3306
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672
# The browser tests (/docs, the web app) drive Debian's Chromium through
# playwright: playwright's own browser download is not reachable from CI. A
# Korean font, so the screenshots they keep show Korean rather than boxes.
CHROMIUM := /usr/bin/chromium
KOREAN_FONT := /usr/share/fonts/truetype/nanum/NanumGothic.ttf

.PHONY: run test services lint typecheck pytest pytest-sqlite pytest-cluster install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: setup.cfg pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	$(BIN)/fitnus up

test: services install-test lint typecheck pytest pytest-sqlite pytest-cluster

# At once, before installing anything: the services answer, or say how to start them.
services:
	$(PYTHON) tests/preflight.py $(TEST_MYSQL_URL) $(TEST_REDIS_URL) $(TEST_RABBITMQ_URL)

lint: install-test
	$(BIN)/ruff check .

typecheck: install-test
	$(BIN)/mypy

$(CHROMIUM) $(KOREAN_FONT):
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-nanum \
	  || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-nanum)

pytest: install-test $(CHROMIUM) $(KOREAN_FONT)
	FITNUS_TEST_DATABASE=mysql FITNUS_TEST_MYSQL_URL=$(TEST_MYSQL_URL) \
	FITNUS_TEST_REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest -q

# The embedded default must stay honest: the portable subset again, on SQLite.
pytest-sqlite: install-test
	FITNUS_TEST_DATABASE=sqlite FITNUS_TEST_REDIS_URL=$(TEST_REDIS_URL) \
	$(BIN)/pytest -q -m portable

# Past one machine: the `cluster` tests again, on a Redis Cluster of three
# masters started from the machine's redis-server, with the workers on RabbitMQ.
pytest-cluster: install-test
	FITNUS_TEST_DATABASE=mysql FITNUS_TEST_MYSQL_URL=$(TEST_MYSQL_URL) \
	FITNUS_TEST_RABBITMQ_URL=$(TEST_RABBITMQ_URL) \
	$(BIN)/python -m tests.services_at_scale $(BIN)/pytest -q -m cluster

clean:
	rm -rf $(VENV) var
