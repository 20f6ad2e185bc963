# Sourced by the setup scripts of the optional side environments
# (benchmarks/peers/setup_peers.sh, benchmarks/nir_consumer/setup_nir_consumer.sh):
#     side_venv NAME REQUIREMENTS [PYTHON]
# creates (or reuses) the virtual environment NAME at the repository root and
# brings it to the pinned REQUIREMENTS; sets $venv to its folder.
side_venv() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/$1"
    if [ ! -x "$venv/bin/python" ]; then
        "${3:-python3.11}" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -r "$2"
}
