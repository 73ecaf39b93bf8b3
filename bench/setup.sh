#!/usr/bin/env bash
# Creates the bench's own virtualenv (.bench-venv in the repository by default) with the
# LiteLLM proxy used as the comparison point by bench/gateway_overhead.py.
# LiteLLM is never a dependency of egide itself.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${BENCH_VENV:-$ROOT/.bench-venv}"
# 1.102.4 is the newest release installable here: 1.103.x and later require
# certifi>=2026.10.19, which the package index does not serve yet.
LITELLM_VERSION="${LITELLM_VERSION:-1.102.4}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet "litellm[proxy]==$LITELLM_VERSION" uvloop==0.23.0 py-spy==0.4.3
"$VENV/bin/python" -c "import importlib.metadata as m; print('litellm', m.version('litellm'))"
