#!/usr/bin/env bash
# Runs inside the freshly created conda environment, in the workflow's working directory.
# Installs em_lib (without touching the pinned dependencies) from EM_LIB_SOURCE, by default
# the working directory (the repository root when the workflow is run from there).
set -euo pipefail
source="${EM_LIB_SOURCE:-.}"
if [ ! -f "$source/pyproject.toml" ]; then
    echo "em_lib post-deploy: no pyproject.toml in '$source'; set EM_LIB_SOURCE to the em_lib checkout" >&2
    exit 1
fi
python -m pip install --no-deps "$source"
