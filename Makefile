# tdexplain: `make report` renders every notebook into reports/, `make test` runs every check.
# Both build .venv on first use; nothing else needs installing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# papermill parameters for `make report`, e.g. PARAMS=notebooks/params/paper.yaml on a GPU
PARAMS ?=

export PATH := $(abspath $(BIN)):$(PATH)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export MPLBACKEND ?= Agg
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: all report test test-browser test-install lab app bench demo-model paper-model samples notebooks clean

all: test

# The library with the workbook's stack (the notebooks extra), the test tools, Voila (the app
# extra: its tests start the app's server) and Ray (the cluster extra, whose tests start a local
# Ray cluster), installed by
# uv (from PyPI, into .venv): the same packages as pip's, downloaded in parallel, in about half
# pip's time on a fresh machine. uv reads UV_INDEX_URL, not pip.conf, for a mirror.
UV := $(BIN)/uv pip install --quiet --python $(BIN)/python
$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv

$(STAMP): pyproject.toml | $(BIN)/uv
	$(UV) -e '.[dev,notebooks,app,cluster]'
	touch $(STAMP)

report: $(STAMP)
	$(BIN)/python -m tdexplain.workbook.report notebooks --out reports $(if $(PARAMS),--parameters $(PARAMS))

# Every test and notebook check on TensorFlow, then the backend-sensitive tests on JAX.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder tests --nbval-lax notebooks --nbval-sanitize-with notebooks/nbval_sanitize.cfg
	KERAS_BACKEND=jax $(BIN)/python -m pytest -n 2 --dist loadfile tests -m both_backends

# As root (containers), JupyterLab refuses to start without --allow-root.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

# The reviewers' app (no code shown): http://localhost:$(APP_PORT)
APP_PORT ?= 8866
app: $(STAMP)
	$(BIN)/voila app/reviewer.ipynb --no-browser --port=$(APP_PORT) --Voila.config_file_paths=app

# JupyterLab (04 and 07) and the app driven in Debian's Chromium with Playwright; screenshots in
# $(SCREENSHOTS). Chromium is installed with apt-get when missing and possible; where it cannot
# be, the target says SKIPPED and why, or fails with REQUIRE_BROWSER=1 (as .ci/run sets).
SCREENSHOTS ?= reports/browser
test-browser: $(STAMP) $(VENV)/.browser
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null \
	    || apt-get install -y -qq chromium >/dev/null 2>&1 \
	    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1; } || true
	@if command -v chromium >/dev/null; then \
	    SCREENSHOTS=$(SCREENSHOTS) $(BIN)/python -m pytest tests_browser -p no:cacheprovider; \
	else echo "test-browser: SKIPPED: Debian's chromium is missing and apt-get could not install it"; \
	    [ "$(REQUIRE_BROWSER)" != 1 ]; fi

$(VENV)/.browser: pyproject.toml | $(STAMP) $(BIN)/uv
	$(UV) -e '.[browser]'
	touch $@

# A wheel of this checkout installed, without extras, into a fresh virtual environment in a
# temporary folder, which explains a sample from outside the repository (minutes: TensorFlow
# comes from the package index or pip's cache). SKIPPED when the index cannot be reached; then
# fails with REQUIRE_INSTALL=1 (as .ci/run sets).
test-install: $(STAMP)
	$(BIN)/python -m pytest tests_install -p no:cacheprovider -s

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Re-execute the notebooks, storing the outputs nbval checks (and no figures).
notebooks: $(STAMP)
	$(BIN)/python scripts/refresh_notebooks.py

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

demo-model: $(STAMP)
	$(BIN)/python scripts/train_demo_model.py
	$(BIN)/python scripts/train_demo_model.py --random-labels
	$(BIN)/python scripts/train_demo_model.py --frame-average

# The paper-size model, its shuffled-label twin and its per-frame baseline, in models/ (a GPU
# is advised), for make report PARAMS=notebooks/params/paper.yaml.
paper-model: $(STAMP)
	$(BIN)/python scripts/train_demo_model.py --paper
	$(BIN)/python scripts/train_demo_model.py --paper --random-labels
	$(BIN)/python scripts/train_demo_model.py --paper --frame-average

clean:
	rm -rf reports .pytest_cache
