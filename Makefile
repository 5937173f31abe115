# lsh-bert-study. The README names these targets; `make reproduce` and `make test` are the two
# commands a fresh clone needs. Both set up .venv first when it is missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# Local copies of the datasets (see data/README.md); ../shared/data when it sits beside the clone.
LSHLIB_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data/local))
export LSHLIB_DATA_DIR
# Never wait on the Hugging Face Hub from make targets when it is unreachable.
export HF_HUB_DOWNLOAD_TIMEOUT ?= 10
export HF_HUB_ETAG_TIMEOUT ?= 10
export TOKENIZERS_PARALLELISM ?= false

# `make figures` records its wall-clock in results/<scale>/make_times.json (not when reproduce
# calls it: reproduce records its own).
CLOCK_FIGURES ?= 1

.PHONY: setup test unit slow nbtest reproduce figures readme lab app bench bench-gpu bench-training plateau long lint format clean

setup: $(STAMP)

# torch is installed first and pinned: torch==2.13.0 resolves to the CPU wheel on our machines
# (a plain `torch` would pull a multi-GB CUDA build). On a CUDA machine install your CUDA build
# of torch 2.13.0 into .venv first; this target then keeps it. constraints.txt pins every other
# package to the versions the committed results came from.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	touch $(STAMP)

unit: setup
	LSHLIB_SCALE=smoke $(PY) -m pytest -q tests

# Integration tests marked slow (deselected from `unit` by pyproject's addopts).
slow: setup
	LSHLIB_SCALE=smoke $(PY) -m pytest -q -m slow tests

# Notebooks only read runs and derived files: the smoke plan is trained and its derived files
# written first (cached, so a second call reuses the runs).
nbtest: setup
	LSHLIB_SCALE=smoke $(PY) -m lshlib.verdict
	LSHLIB_SCALE=smoke $(PY) -m pytest -q --nbval-lax --nbval-current-env -p no:cacheprovider $(NOTEBOOKS)

test: unit slow nbtest

# Execute every notebook at the default scale (laptop unless LSHLIB_SCALE says otherwise), in
# place, writing figures/ and results/<scale>/, recomputing every training run: LSHLIB_REUSE=runs
# reuses a run only when its model is in the local runs/ cache (so an interrupted reproduce
# resumes), never a committed record alone. Benchmarks are not part of it: they need an idle
# machine (`make bench`, `make bench-training`). Every training run of notebooks 04-06 (the
# verdict's plan holds them all) is trained first, WORKERS at a time (LSHLIB_WORKERS; 2 by
# default, one thread each on a 2-core machine); the notebooks then reuse them.
WORKERS ?= 2
reproduce: setup
	$(PY) -m lshlib.bench.wallclock start reproduce
	LSHLIB_REUSE=runs LSHLIB_WORKERS=$(WORKERS) $(PY) -m lshlib.verdict
	LSHLIB_REUSE=runs LSHLIB_WORKERS=$(WORKERS) $(MAKE) --no-print-directory figures CLOCK_FIGURES=
	$(PY) -m lshlib.bench.wallclock finish reproduce
	$(MAKE) --no-print-directory readme

# Re-execute every notebook from the records already in results/ (training runs are reused):
# first the derived files (floors, lexical baseline, locality tables, claims.json; no training),
# which the notebooks only read.
figures: setup
	$(if $(CLOCK_FIGURES),$(PY) -m lshlib.bench.wallclock start figures)
	$(PY) -m lshlib.verdict --derived
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb (scale $${LSHLIB_SCALE:-laptop})"; \
	  $(PY) -m jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.record_timing=False \
	    --Exporter.preprocessors='["nbconvert.preprocessors.CoalesceStreamsPreprocessor"]' \
	    "$$nb" || exit 1; \
	done
	$(if $(CLOCK_FIGURES),$(PY) -m lshlib.bench.wallclock finish figures)
	$(MAKE) --no-print-directory readme

# The README's results block, generated from results/laptop/ (tests/test_readme.py checks it).
readme: setup
	$(PY) -m lshlib.report.readme

lab: setup
	$(PY) -m jupyter lab notebooks

# The explorers of notebooks 01 and 02 as a standalone page (Voila), on localhost only.
APP_PORT ?= 8866
app: setup
	$(PY) -m voila app/explorers.ipynb --no-browser --port=$(APP_PORT) --Voila.ip=127.0.0.1

# Benchmarks write results/<scale>[-<device>]/*.json; run them on an otherwise idle machine.
bench: setup
	$(PY) benchmarks/attention.py

# The accelerator benchmark (lshlib.bench.gpu): SDPA, eager, bucketed and FlexAttention in bf16 on
# one GPU, under 4 minutes on an H100; writes results/laptop-cuda/attention_bench.json after every
# length. No setup: it needs only torch (and transformers for the training step), so it runs with
# .venv's Python when there is one, else python3 with the repository on PYTHONPATH.
bench-gpu:
	PYTHONPATH=. $(if $(wildcard $(PY)),$(PY),$(PYTHON)) -m lshlib.bench --device cuda

# The plateau jobs (lshlib.experiments.plateau): seeds 1-5 of baseline and lsh_paper, 1-3 of lsh_paper_fixed,
# each stopped at step 16,000 with its chained SST-2 transfer, two at a time on one thread each,
# from a git worktree pinned at the current commit; each record is committed as it lands.
# DEADLINE=<minutes> starts a job only if its estimated time fits.
DEADLINE ?=
plateau: setup
	$(PY) -m lshlib.verdict.runner $(if $(DEADLINE),--deadline $(DEADLINE))

# The verdict's long runs: the plateau jobs, then the exploratory seed-42 plateau runs and the
# long-sequence runs of SDPA vs the bucketed kernel; cached like every run.
long: plateau
	$(PY) -m lshlib.verdict --long

# Bare sparse-head MLM step vs the full training pipeline (results/laptop/training_bench.json).
bench-training: setup
	$(PY) benchmarks/training.py

lint: setup
	$(PY) -m ruff check lshlib tests benchmarks notebooks app
	$(PY) -m ruff format --check lshlib tests benchmarks notebooks app

format: setup
	$(PY) -m ruff format lshlib tests benchmarks notebooks app
	$(PY) -m ruff check --fix lshlib tests benchmarks notebooks app

clean:
	rm -rf $(VENV) runs .pytest_cache
