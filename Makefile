# Two commands: `make demo` (train a small model, colorize photos it never saw) and
# `make test` (set up + run the tests).
# Both set themselves up: a .venv is created when missing and requirements are
# installed only when requirements.txt or pyproject.toml changed since last time.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

export NO_ALBUMENTATIONS_UPDATE := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: demo test test-fast bench venv clean

venv: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

## make demo: train a small model on the photos shipped with scikit-image and
## matplotlib (or on DATA=DIR), colorize photos it did not train on, write
## $(DEMO_OUT)/before_after.png and the run folder. A few minutes on a CPU, no network.
DEMO_OUT ?= demo_out
demo: $(STAMP)
	$(PY) -m colorfusion.demo --out "$(DEMO_OUT)" $(if $(DATA),--data "$(DATA)")

## make test: the whole suite (what CI runs)
test: $(STAMP)
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

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
