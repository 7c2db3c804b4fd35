#!/usr/bin/env bash
# Builds polyproc and runs every test, on a fresh Debian 12 machine too (installs what is missing).
#   bash tools/test.sh                 # the default, asan and tsan presets (and two minutes of the
#                                      # chaos soak, tools/soak), then 30 s of each fuzzer
#                                      # (tools/fuzz: the fuzz preset, clang): what CI runs
#   bash tools/test.sh asan            # any presets: default debug asan tsan fuzz
# Warnings are errors here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/format --check  # before the long build: an unformatted file fails at once
presets=("$@")
((${#presets[@]})) || presets=(default asan tsan fuzz)
for preset in "${presets[@]}"; do
  if [ "$preset" = fuzz ]; then  # the decoders of hostile bytes, briefly (findings fail the run)
    echo "=== preset fuzz"
    bash tools/fuzz --seconds 30
    continue
  fi
  echo "=== preset $preset"
  cmake --preset "$preset" -DPOLYPROC_WERROR=ON >/dev/null
  cmake --build --preset "$preset" -j 2
  ctest --preset "$preset"
  if [ "$preset" = default ] && [ -x tools/bench-table ]; then
    echo "=== benchmark smoke run (figures: tools/bench-table)"
    python3 tools/bench-table --smoke --build-dir "build/$preset"
  fi
  if [ "$preset" = default ]; then
    echo "=== chaos soak, two minutes (tools/soak)"
    bash tools/soak --build-dir "build/$preset" --seconds 120
  fi
done
