#!/usr/bin/env bash
# Makes a Python virtual environment holding a pip PyTorch 2.x, whose bundled
# libtorch the addon can build against (PYTHON=<venv>/bin/python npm test).
#   scripts/torch2-venv.sh [DIR]      default DIR: .venv-torch2
# RANDMASK_TORCH_SPEC overrides the requirement (default "torch>=2.0,<3").
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-torch2}
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch, sys; sys.exit(int(torch.__version__.split(".")[0]) < 2)' 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
# A machine with a local package mirror and no network (like this project's CI)
# uses the mirror alone instead of retrying the public index for every package.
[ -d /opt/pypi/simple ] && export PIP_INDEX_URL=file:///opt/pypi/simple
"$venv/bin/pip" install -q "${RANDMASK_TORCH_SPEC:-torch>=2.0,<3}"
"$venv/bin/python" -c 'import torch; print("randmask: PyTorch", torch.__version__, "in", torch.__file__)' 2>/dev/null
