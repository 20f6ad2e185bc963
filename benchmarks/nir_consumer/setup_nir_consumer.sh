#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment .venv-nir at the repository
# root holding Norse 1.1.0 (a NIR consumer, on CPU torch) for
# benchmarks/nir_consumer/run_nir.py and tests/test_nir_consumer.py, which is
# skipped until this environment exists. Idempotent: an existing environment is
# reused and brought to the pinned versions in benchmarks/nir_consumer/requirements.txt.
# neurosim is NOT installed there: run_nir.py reads neurosim's NIR files only.
#
#     bash benchmarks/nir_consumer/setup_nir_consumer.sh [PYTHON]    # PYTHON defaults to python3.11
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../side_venv.sh"
side_venv .venv-nir "$here/requirements.txt" "${1:-python3.11}"
"$venv/bin/python" - <<'PY'
from importlib.metadata import version
import nir, norse.torch, torch
print("nir consumer venv ready: norse", version("norse"), "| torch", torch.__version__,
      "| nirtorch", version("nirtorch"), "| nir", version("nir"))
PY
