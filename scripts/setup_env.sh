#!/usr/bin/env bash
# Create (or reuse) the project virtual environment with every pinned dependency.
# Idempotent: a stamp named after the hash of the pin files skips the work when
# nothing changed. Python 3.11 is required (see README "Installation notes").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=${NEUROSIM_VENV:-.venv}
key=$(cat requirements/base.txt requirements/simulators.txt setup.cfg | sha256sum | cut -c1-16)
stamp="$VENV/.neurosim-env-$key"
if [ -f "$stamp" ]; then
  echo "environment up to date ($VENV)"
  exit 0
fi
"$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
$pip install -U pip setuptools wheel
# Ordinary packages first, resolved normally ...
$pip install -r requirements/base.txt
# ... then the simulators without their (wrong for Python 3.11 + numpy 2)
# declared requirements. brian2 2.10.1 declares Python >= 3.12 but runs on 3.11;
# lava-nc 0.10.0 declares Python < 3.11 and numpy < 2 (its import on 3.11 is
# fixed at run time by neurosim.hardware_targets.lava.compat).
$pip install --no-deps --ignore-requires-python -r requirements/simulators.txt
$pip install --no-deps -e .
rm -f "$VENV"/.neurosim-env-*
touch "$stamp"
echo "environment ready ($VENV)"
