#!/usr/bin/env bash
# The main job: install Qiao, prepare the model, index the demo corpus, serve it.
# Safe to run again: installs and the model are reused, unchanged documents are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/qiao model prepare
.venv/bin/qiao ingest corpus/
.venv/bin/qiao search "Who is the Secretary of the CPC Qingpu District Committee?" -k 2
.venv/bin/qiao search "数字创新高地有哪些计划？" -k 2 --lang zh
if .venv/bin/qiao serve --help >/dev/null 2>&1; then
  exec .venv/bin/qiao serve
fi
