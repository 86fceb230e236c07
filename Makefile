# Every target creates .venv on first use, so a fresh clone needs only python3.11, pip and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FIXTURES := fixtures/cases
ARCHIVE ?= archive

.PHONY: run run-fixtures test test-fast lint bench clean

$(STAMP): pyproject.toml native/module.c native/parts.h native/irc.c native/record.c native/replay.c native/verify.c native/merge.c native/export.c native/serve.c native/index.c native/canonline.h native/jsonchars.h
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: the real job on loopback: a busy Twitch-like channel, `archive` with two recorders (one killed
## and restarted) for a minute, verify's report, and the live archive compared with an offline replay
run: $(STAMP)
	$(BIN)/python -m demo.live live-demo

## run-fixtures: replay the bundled fixture recordings into ./archive and print the summary
run-fixtures: $(STAMP)
	rm -rf $(ARCHIVE)
	$(BIN)/chat-archiver replay $(FIXTURES) --out $(ARCHIVE)

# Tests run on every core (pytest-xdist); tests in one xdist_group share a worker (--dist loadgroup).
PYTEST := $(BIN)/python -m pytest --dist loadgroup
# The whole suite waits on servers, browsers and killed processes more than it computes, so it runs
# two workers a core (2 cores: 166 s with two workers, 114 s with four, no faster with six);
# test-fast computes, and runs one worker a core.
SUITE_WORKERS ?= $(shell echo $$(( $$(nproc) * 2 )))

## test: the whole suite (unit, property, integration) in parallel, then ruff, ruff format and mypy
test: $(STAMP)
	$(PYTEST) -n $(SUITE_WORKERS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## test-fast: the suite without slow and integration tests
test-fast: $(STAMP)
	$(PYTEST) -n auto -m 'not slow and not integration'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: throughput and memory figures, one per line as `name: value unit`
bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(ARCHIVE) live-demo .pytest_cache .mypy_cache .ruff_cache .hypothesis
