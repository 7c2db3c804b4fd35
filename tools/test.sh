#!/usr/bin/env bash
# Builds polyproc and runs every test, on a fresh Debian 12 machine too (installs what is missing).
#   bash tools/test.sh                 # the default and asan presets (what CI runs)
#   bash tools/test.sh tsan            # any presets: default debug asan tsan
# Warnings are errors here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/format --check  # before the long build: an unformatted file fails at once
presets=("$@")
((${#presets[@]})) || presets=(default asan)
for preset in "${presets[@]}"; do
  echo "=== preset $preset"
  cmake --preset "$preset" -DPOLYPROC_WERROR=ON >/dev/null
  cmake --build --preset "$preset" -j 2
  ctest --preset "$preset"
  if [ "$preset" = default ] && [ -x tools/bench-table ]; then
    echo "=== benchmark smoke run (figures: tools/bench-table)"
    python3 tools/bench-table --smoke --build-dir "build/$preset"
  fi
done
