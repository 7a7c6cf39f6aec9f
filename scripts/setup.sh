#!/usr/bin/env bash
# Sourced by the README's commands: installs the system packages and the Python interop peer
# the project needs, and exports GMCHAIN_PYTHON. Safe to run again: it installs only what is missing.

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v cc >/dev/null 2>&1 || need+=(gcc)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
# Real PKCS#11 modules and an independent PKCS#11 client for the HSM tests.
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need+=(softhsm2)
command -v pkcs11-tool >/dev/null 2>&1 || need+=(opensc)
# `ip netns` for the silent-partition test (tests/bft.rs): validators in network namespaces.
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# RocksDB (storage-rocksdb) is C++ built by the rocksdb crate: g++, and libclang with clang's
# resource headers for bindgen (without them: "'stdbool.h' file not found").
command -v g++ >/dev/null 2>&1 || need+=(g++)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ls /usr/lib/llvm-*/lib/clang/*/include/stdbool.h >/dev/null 2>&1 || need+=(libclang-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 2
  fi
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# GmSSL 3 (through the PyPI binding gmssl-pyx) is the second independent implementation the
# interop tests compare against. It lives in a virtualenv beside the build output.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
venv="${GMCHAIN_VENV:-$target_dir/gmchain-venv}"
if ! "$venv/bin/python" -c "import gmssl_pyx" >/dev/null 2>&1; then
  echo "== python venv with gmssl-pyx at $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" || { echo "setup: python3 -m venv failed (install python3-venv)" >&2; exit 2; }
  "$venv/bin/pip" install -q --disable-pip-version-check "gmssl-pyx==2.1.0"
fi
export GMCHAIN_PYTHON="$venv/bin/python"
