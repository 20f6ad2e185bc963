#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment .venv-peers at the repository
# root holding pcx 0.6.3 on CPU JAX, for benchmarks/peers/pcx_mnist.py.
# Idempotent: an existing environment is reused and brought to the pinned
# versions in benchmarks/peers/requirements.txt. neurosim is NOT installed there.
#
#     bash benchmarks/peers/setup_peers.sh [PYTHON]    # PYTHON defaults to python3.11
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../side_venv.sh"
side_venv .venv-peers "$here/requirements.txt" "${1:-python3.11}"
"$venv/bin/python" - <<'PY'
import jax, pcx, equinox, optax
print("peers venv ready: jax", jax.__version__, "backend", jax.default_backend(),
      "| pcx", getattr(pcx, "__version__", "0.6.3"), "| equinox", equinox.__version__,
      "| optax", optax.__version__)
PY
