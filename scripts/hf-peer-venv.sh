#!/usr/bin/env bash
# The Hugging Face benchmark peer (`npm run bench -- --peer hf`): the PyTorch 2.x
# virtual environment of scripts/torch2-venv.sh plus transformers and PEFT.
#   scripts/hf-peer-venv.sh [DIR]      default DIR: .venv-torch2
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-torch2}
bash scripts/torch2-venv.sh "$venv"
"$venv/bin/python" -c 'import transformers, peft' 2>/dev/null && exit 0
[ -d /opt/pypi/simple ] && export PIP_INDEX_URL=file:///opt/pypi/simple
"$venv/bin/pip" install -q "transformers>=4.56" "peft>=0.17" numpy
