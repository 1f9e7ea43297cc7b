# Two commands: `make demo` (colorize photos with the shipped model) and
# `make test` (set up + run the tests); `make test-kaggle` runs the tests again
# on Kaggle's package versions (CI runs both).
# Both set themselves up: a .venv is created when missing and requirements are
# installed only when requirements.txt or pyproject.toml changed since last time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export NO_ALBUMENTATIONS_UPDATE := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-fast lint browser bench venv clean

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## make demo: colorize the photos that ship with scikit-image and matplotlib with
## the model that ships in colorfusion (or DATA=DIR's photos), write
## $(DEMO_OUT)/before_after.png. Seconds on a CPU, no network, no training.
## TRAIN=1 fine-tunes the shipped model on the photos first (a few minutes).
DEMO_OUT ?= demo_out
demo: $(STAMP)
	$(PY) -m colorfusion.demo --out "$(DEMO_OUT)" $(if $(DATA),--data "$(DATA)") $(if $(TRAIN),--train)

## make lint: ruff (its settings are in pyproject.toml)
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks imgs

## make browser: Debian's Chromium, which the studio's browser test drives, installed when
## missing (root; never `playwright install`). Failing to install it fails only in CI (CI set),
## where that test must run; elsewhere the test then skips.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } || \
	  { echo "warning: cannot install chromium: the studio's browser test will skip" >&2; [ -z "$$CI" ]; }

## make test: lint, then the whole suite (what CI runs)
test: lint browser
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-fast: skip tests marked slow
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## make bench: every benchmark script, one after another
bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

## make test-backends: model, bins and loss tests under the JAX and PyTorch
## backends (CPU), in their own venv. Not run by CI. torch is pinned to the
## CPU build kept on this machine (plain `torch` pulls a multi-GB CUDA build).
BVENV  ?= .venv-backends
BPY    := $(BVENV)/bin/python
BSTAMP := $(BVENV)/.installed
BACKEND_TESTS ?= tests/test_model.py tests/test_losses.py tests/test_bins.py

.PHONY: test-backends

$(BPY):
	$(PYTHON) -m venv $(BVENV)
	$(BPY) -m pip install --quiet --upgrade pip

# Same versions as the main venv (requirements.txt as constraints), without
# TensorFlow: each backend is selected with KERAS_BACKEND.
$(BSTAMP): requirements.txt pyproject.toml | $(BPY)
	grep -v -e '^-e' -e '^tensorflow' requirements.txt > $(BVENV)/constraints.txt
	$(BPY) -m pip install --quiet -c $(BVENV)/constraints.txt -e . pytest scipy jax "torch==2.13.0"
	touch $(BSTAMP)

test-backends: $(BSTAMP)
	for b in jax torch; do \
	  echo "== KERAS_BACKEND=$$b"; \
	  KERAS_BACKEND=$$b $(BPY) -m pytest $(BACKEND_TESTS) $(PYTEST_ARGS) || exit 1; \
	done

## make test-kaggle: the whole suite on Kaggle's package versions
## (constraints/kaggle.txt), with colorfusion installed the way the notebooks
## install it there: a wheel, its dependencies resolved against what is already
## installed, never requirements.txt. Fails when that install moves one of
## Kaggle's packages. KAGGLE_NUMPY=2.4.6 swaps Kaggle's numpy pin for that
## version (in its own venv). What CI runs after `make test`.
KAGGLE_NUMPY ?=
KVENV  ?= .venv-kaggle$(if $(KAGGLE_NUMPY),-numpy$(KAGGLE_NUMPY))
KPY    := $(KVENV)/bin/python
KSTAMP := $(KVENV)/.installed
KCONSTRAINTS := $(KVENV)/constraints.txt
# Kaggle's packages that colorfusion uses, installed first at Kaggle's versions.
KAGGLE_PACKAGES := tensorflow keras numpy scipy scikit-image matplotlib pillow albumentations opencv-python-headless
# The test tools at requirements.txt's versions (Kaggle's constraints keep its packages where they are).
TEST_TOOLS = $(shell sed -n -E 's/^(pytest|papermill|nbclient|nbformat|ipykernel)([~=<>][^ #]*).*/\1\2/p' requirements.txt)

.PHONY: test-kaggle

$(KPY):
	$(PYTHON) -m venv $(KVENV)
	$(KPY) -m pip install --quiet --upgrade pip

$(KSTAMP): constraints/kaggle.txt requirements.txt | $(KPY)
	sed -E '$(if $(KAGGLE_NUMPY),s/^numpy==.*/numpy==$(KAGGLE_NUMPY)/)' constraints/kaggle.txt > $(KCONSTRAINTS)
	$(KPY) -m pip install --quiet -c $(KCONSTRAINTS) $(KAGGLE_PACKAGES)
	$(KPY) -m pip install --quiet -c $(KCONSTRAINTS) $(TEST_TOOLS)
	touch $(KSTAMP)

# The wheel is rebuilt and installed afresh on every run: the tests import the
# installed package (tests/conftest.py checks), so it must be today's code.
test-kaggle: $(KSTAMP)
	rm -rf $(KVENV)/dist && $(KPY) -m pip wheel --quiet --no-deps -w $(KVENV)/dist .
	$(KPY) -m pip uninstall --quiet --yes colorfusion
	$(KPY) -m pip freeze --all > $(KVENV)/freeze-before.txt
	$(KPY) -m pip install --quiet $(KVENV)/dist/colorfusion-*.whl
	$(KPY) constraints/check_pins.py $(KCONSTRAINTS) --before $(KVENV)/freeze-before.txt
	COLORFUSION_TESTS_IMPORT_INSTALLED=1 $(KPY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(KVENV) .pytest_cache build src/*.egg-info
