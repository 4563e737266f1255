# Every target builds .venv first when it is missing or older than the
# files that define it (pyproject.toml, constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vdreid demo --out $(DEMO_DIR)

test: $(STAMP)
	VDREID_TEST_BACKENDS=$${VDREID_TEST_BACKENDS-torch,mindspore} $(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

lint: $(STAMP)
	$(BIN)/ruff check vdreid backends tests benchmarks
	$(BIN)/ruff format --check vdreid backends tests benchmarks
	$(BIN)/mypy vdreid backends

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
