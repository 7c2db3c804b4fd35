#!/usr/bin/env bash
# Builds polyproc (installing what is missing) and runs the demo: every ported seed example,
# each introduced by what it shows.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j 2
bash examples/run-all.sh build/default
