#!/usr/bin/env bash
# Build the Python runbook `hello-python` (app.py) into a drover runbook component.
#
#   ./build.sh WIT_DIR OUTPUT.wasm [VENV_DIR]
#
#   WIT_DIR      directory (or file) holding drover's WIT (package drover:runbook, world `runbook`),
#                e.g. wit/ of the drover repository
#   OUTPUT.wasm  where to write the component
#   VENV_DIR     the virtualenv to create/use (default: .venv next to this script)
#
# Creates the venv if needed, installs the pinned componentize-py, and runs
#   componentize-py -d WIT_DIR -w runbook componentize app -p APP_DIR -o OUTPUT.wasm
# app.py is found next to this script. Needs python3 >= 3.10 and network access to PyPI
# the first time. No Rust toolchain, no cargo.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1   # bundles CPython 3.14 and wasi 0.2.9 imports

if [ $# -lt 2 ]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
wit=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
out_dir=$(mkdir -p "$(dirname "$2")" && cd "$(dirname "$2")" && pwd)
out=$out_dir/$(basename "$2")
venv=${3:-$here/.venv}

if [ ! -x "$venv/bin/componentize-py" ] || \
   [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
fi

cd "$here"
start=$(date +%s%N)
# -p "$here" only: keeps the venv's site-packages (componentize-py itself) out of
# the component's Python path. The app may import only what is importable at
# build time: componentize-py snapshots the interpreter after importing app.py
# and ships no filesystem, so every module must be imported at top level.
"$venv/bin/componentize-py" -q -d "$wit" -w runbook componentize app -p "$here" -o "$out"
end=$(date +%s%N)
printf 'built %s (%s bytes, sha256 %s) in %d ms with componentize-py %s\n' \
  "$out" "$(stat -c %s "$out")" "$(sha256sum "$out" | cut -d' ' -f1)" \
  "$(( (end - start) / 1000000 ))" "$COMPONENTIZE_PY_VERSION"
