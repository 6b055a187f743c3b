# Two entry points work on a fresh machine; both create (or reuse) the virtual environment .venv.
#   make demo   set up, then run the main job on the built-in benchmark
#   make test   set up, then run the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SUM    := $(shell cksum pyproject.toml | cut -d' ' -f1)
# one stamp per install: the package alone (demo), with the test tools (test), with Jupyter (lab)
CORE   := $(VENV)/.installed-core-$(SUM)
TESTS  := $(VENV)/.installed-test-$(SUM)
LAB    := $(VENV)/.installed-lab-$(SUM)

.PHONY: demo test test-fast lab setup clean hcml

setup: $(CORE)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@rm -f $(VENV)/.installed-core-* && touch $@

$(TESTS): $(CORE)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@rm -f $(VENV)/.installed-test-* && touch $@

$(LAB): $(CORE)
	$(BIN)/python -m pip install --quiet -e '.[lab]'
	@rm -f $(VENV)/.installed-lab-* && touch $@

demo: $(CORE)
	$(BIN)/selfy-lab ablate --offsets -3..3 --out runs/demo

# one pytest worker per core (pytest-xdist); each worker's torch gets its share of the cores (tests/conftest.py)
test: $(TESTS)
	$(BIN)/python -m pytest -q -n auto

# the inner loop while editing: the tests not marked slow
test-fast: $(TESTS)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

# hierarchical contrastive motion learning on the built-in benchmark: pretraining per seed (every stage), then
# the label-efficiency study (1/10/100% labels, equal steps) and the auxiliary-loss sweep, into runs/hcml (not committed: copy what you want to keep into
# results/); a pretraining whose checkpoint is missing trains again
hcml: $(CORE)
	for s in 0 1 2; do $(BIN)/selfy-lab pretrain --experiment experiments/pretrain/hcml.yaml --seed $$s --out runs/hcml/pretrain/seed-$$s || exit 1; done
	$(BIN)/selfy-lab ablate --experiment experiments/hcml_labels.yaml --seeds 3 --out runs/hcml/labels
	$(BIN)/selfy-lab ablate --experiment experiments/hcml_aux.yaml --seeds 3 --out runs/hcml/aux

lab: $(LAB)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache
