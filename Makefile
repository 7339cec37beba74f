# Two commands on a fresh machine:  `make run` (set up + main job on the embedded default)
# and `make test`. Both set up .venv first; a second set-up is a no-op while pyproject.toml is unchanged.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.zipp-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0
PYTEST_ARGS ?=

.PHONY: setup run test test-slow bench clean
setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip check
	touch $(STAMP)

run: setup
	$(VENV)/bin/zipp run

test: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf work
