#!/usr/bin/env bash
# Every GPU benchmark the README reports, one JSON out (see benchmarks/gpu.py; --dry-run checks it on a CPU).
#   bash benchmarks/gpu.sh [--dry-run] [--out FILE] [--tokenizer DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu.py "$@"
