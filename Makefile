# Set-up is idempotent: .venv is created once, the project re-installed only when pyproject changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-blas lint bench install clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/mmfactor bench quick --out runs/demo

# Two pytest workers of one torch thread each (pytest-xdist): tests that wait on a child
# process (the command line, DDP, kill-and-resume) leave a core idle, which the other
# worker fills (on 2 cores: 532 s against 702 s one test at a time on two threads).
TEST_WORKERS ?= 2
test: $(STAMP) browser
	MMFACTOR_TEST_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The data and engine tests again under another BLAS kernel and one thread (OpenBLAS for
# NumPy; MKL and ATen on their AVX2 code paths for torch): a test that compares floats
# computed on different shapes bit for bit passes under one kernel's blocking and fails
# under another's (tools/blas_variant.py names a kernel this CPU runs, other than its own).
BLAS_TESTS := tests/data tests/train/test_engine.py tests/train/test_precision.py \
  tests/train/test_gpu.py tests/test_cli.py::test_fit_resumes_and_refuses_a_different_config \
  tests/train/test_ddp_and_resume.py::test_killed_run_resumes_to_the_same_weights
test-blas: $(STAMP)
	@coretype=$$($(BIN)/python tools/blas_variant.py); \
	echo "test-blas: OPENBLAS_CORETYPE=$${coretype:-(native)} OPENBLAS_NUM_THREADS=1 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2, one thread"; \
	env $${coretype:+OPENBLAS_CORETYPE=$$coretype} OPENBLAS_NUM_THREADS=1 MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 \
	  MKL_NUM_THREADS=1 OMP_NUM_THREADS=1 MMFACTOR_TEST_THREADS=1 \
	  $(BIN)/python -m pytest -q -n $(TEST_WORKERS) $(BLAS_TESTS)

# Headless Chromium + chromedriver for tests/bench/test_report_browser.py (Debian packages).
# Installed once when absent; never fails: without apt-get, root/sudo or network the browser
# test is skipped with its reason.
SUDO := $(shell [ "$$(id -u)" = 0 ] || ! command -v sudo >/dev/null 2>&1 || echo sudo -n)
browser:
	@command -v chromedriver >/dev/null 2>&1 || { \
	  command -v apt-get >/dev/null 2>&1 \
	  && $(SUDO) apt-get update -qq >/dev/null 2>&1 \
	  && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	       --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
	  || echo "browser: could not install chromium/chromedriver; the browser test will be skipped"; \
	}

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools examples
	$(BIN)/ruff format --check src tests benchmarks tools examples
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

clean:
	rm -rf $(VENV) runs build *.egg-info src/*.egg-info
