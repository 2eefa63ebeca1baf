#!/usr/bin/env bash
# Create .venv in the checkout and install Qiao into it. Safe to run again.
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# The CPU build of torch first: otherwise sentence-transformers pulls the CUDA
# build and several GB of NVIDIA wheels.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "installing torch 2.13.0 (CPU build)…"
  "${pip[@]}" install "torch==2.13.0"
fi
echo "installing qiao${extras}…"
"${pip[@]}" install -e ".${extras}"
