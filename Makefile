# Two entry points work on a fresh machine; both create (or reuse) the virtual environment .venv.
#   make demo   set up, then run the main job on the built-in benchmark
#   make test   set up, then run the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test test-fast lab setup clean hcml

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lab]'
	@rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(BIN)/selfy-lab ablate --offsets -3..3 --out runs/demo

# one pytest worker per core (pytest-xdist); each worker's torch gets its share of the cores (tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto

# the inner loop while editing: the tests not marked slow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow"

# hierarchical contrastive motion learning on the built-in benchmark: pretraining per seed (every stage), then
# the label-efficiency study (1/10/100% labels, equal steps) and the auxiliary-loss sweep, into runs/hcml (not committed: copy what you want to keep into
# results/); a pretraining whose checkpoint is missing trains again
hcml: $(STAMP)
	for s in 0 1 2; do $(BIN)/selfy-lab pretrain --experiment experiments/pretrain/hcml.yaml --seed $$s --out runs/hcml/pretrain/seed-$$s || exit 1; done
	$(BIN)/selfy-lab ablate --experiment experiments/hcml_labels.yaml --seeds 3 --out runs/hcml/labels
	$(BIN)/selfy-lab ablate --experiment experiments/hcml_aux.yaml --seeds 3 --out runs/hcml/aux

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache
