#!/usr/bin/env bash
# Installs the Debian 12 packages polyproc needs, only those missing (apt-get update once, then
# apt-get install). Run as root, or with sudo available.
set -euo pipefail
packages=(g++ cmake ninja-build googletest libgtest-dev libgmock-dev libbenchmark-dev
          libcereal-dev libssl-dev libxxhash-dev libabsl-dev libboost-dev clang-format-16
          iproute2 clang libopenmpi-dev openmpi-bin python3-mpi4py)
command -v python3 >/dev/null 2>&1 || packages+=(python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
