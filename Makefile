# Two commands do all set-up on a fresh machine:
#   make demo   -> venv + deps, then the main job on the bundled defaults (out/)
#   make test   -> venv + deps, then the whole test suite
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-$(shell cat requirements/core.txt requirements/dev.txt pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
# Older Blender LTS the manifest claims (4.2+) beside the main venv's 5.0.1: each gets its own small
# venv (scripts/bpy_lts.sh; wheels cached in ~/.cache/streamingtalker) and runs the bpy_matrix tests.
BPY_LTS ?= 4.2.0 4.5.4

.PHONY: setup demo test bench clean typecheck

setup: $(STAMP)

$(STAMP): requirements/core.txt requirements/dev.txt pyproject.toml
	bash scripts/setup_system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@echo "installing the pinned Python packages into $(VENV) (pip's output: $(VENV)/setup.log)"
	@( $(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -r requirements/dev.txt && \
	   $(PY) -m pip install -q --no-deps -e . ) > $(VENV)/setup.log 2>&1 || { tail -n 30 $(VENV)/setup.log; exit 1; }
	rm -f $(VENV)/.stamp-* && touch $@

demo: setup
	$(PY) scripts/demo.py --out out

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)
	for v in $(BPY_LTS); do bash scripts/bpy_lts.sh $$v $(PY) || exit 1; done

bench: setup
	$(PY) -m inference_core bench --json

typecheck: setup
	$(PY) -m mypy --config-file tests/addon_mypy.ini streamingtalker_addon
	$(PY) -m mypy --config-file tests/mypy_core.ini inference_core

clean:
	rm -rf out build dist .pytest_cache
