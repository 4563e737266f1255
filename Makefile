# Every target builds .venv first when it is missing or older than the
# files that define it (pyproject.toml, constraints.txt).
PYTHON ?= python3
# torch is pinned in CONSTRAINTS; TORCH_INDEX adds the index its build comes from:
#   make venv TORCH_INDEX=https://download.pytorch.org/whl/cpu     (CPU only, ~200 MB)
#   make venv TORCH_INDEX=https://download.pytorch.org/whl/cu126   (CUDA 12.6)
# unset, pip takes PyPI's build (Linux x86-64: CUDA, several GB; macOS: CPU/MPS)
CONSTRAINTS ?= constraints.txt
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: demo test bench lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(CONSTRAINTS) \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/vdreid demo --out $(DEMO_DIR)

# pytest-xdist: one worker per core (at most 4); a module whose shared
# fixtures are costly stays on one worker (its xdist_group mark).
# TEST_WORKERS=0 runs the tests in this process.
TEST_WORKERS ?= auto
test: $(STAMP)
	VDREID_TEST_BACKENDS=$${VDREID_TEST_BACKENDS-torch,mindspore,onnxruntime} $(BIN)/python -m pytest -q \
		-n $(TEST_WORKERS) --maxprocesses=4 --dist loadgroup

bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py

lint: $(STAMP)
	$(BIN)/ruff check vdreid backends tests benchmarks
	$(BIN)/ruff format --check vdreid backends tests benchmarks
	$(BIN)/mypy vdreid backends

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
