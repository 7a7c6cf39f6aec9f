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
# The web console's browser test (tests/console.rs, issue 17): Node.js for playwright-core,
# Debian's chromium (about 360 MB installed) and a CJK font so the screenshots show Chinese.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/share/fonts/truetype/wqy/wqy-microhei.ttc >/dev/null 2>&1 || need+=(fonts-wqy-microhei)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 2
  fi
  echo "== apt-get install ${need[*]}"
  apt_started=$(date +%s)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  echo "== apt-get install took $(( $(date +%s) - apt_started )) s"
fi

# The console test's playwright-core, pinned with its lock file; installed when missing or of
# another version than the lock file's (npm ci never downloads a browser: it uses /usr/bin/chromium).
console_pw="tests/console/node_modules/playwright-core/package.json"
if [ ! -f "$console_pw" ] || [ "$(node -p "require('./$console_pw').version")" != \
     "$(node -p "require('./tests/console/package-lock.json').packages['node_modules/playwright-core'].version")" ]; then
  echo "== npm ci in tests/console (playwright-core)"
  (cd tests/console && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# WASM contracts (issue 14): `gmchain contract build` and tests/contract_sdk.rs need a rustc
# with the wasm32-unknown-unknown standard library. rustup's toolchain here has none and cannot
# download one, so Debian's rustc 1.63 and libstd-rust-dev-wasm32 (about 630 MB) provide it, at
# /usr/lib/rustlib/wasm32-unknown-unknown; rustup's rustc stays first on the PATH for the
# workspace. Installed only when neither has the target; the install's duration is printed.
rustup_sysroot="$(rustc --print sysroot 2>/dev/null || true)"
if [ ! -d /usr/lib/rustlib/wasm32-unknown-unknown/lib ] \
   && [ ! -d "${rustup_sysroot:-/nonexistent}/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: no rustc has the wasm32-unknown-unknown target; install it (rustup target add wasm32-unknown-unknown, or apt-get install rustc libstd-rust-dev-wasm32) or run as root" >&2
    exit 2
  fi
  echo "== apt-get install rustc libstd-rust-dev-wasm32 (the wasm32 standard library for contracts)"
  wasm_started=$(date +%s)
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rustc libstd-rust-dev-wasm32 >/dev/null
  echo "== rustc + libstd-rust-dev-wasm32 installed in $(( $(date +%s) - wasm_started )) s"
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
# schemathesis (PyPI) fuzzes the REST API against its OpenAPI document (tests/rest.rs).
if [ ! -x "$venv/bin/st" ] || ! "$venv/bin/st" --version 2>/dev/null | grep -q "4.32.5"; then
  echo "== schemathesis 4.32.5 into $venv"
  st_started=$(date +%s)
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
  echo "== schemathesis installed in $(( $(date +%s) - st_started )) s"
fi
export GMCHAIN_PYTHON="$venv/bin/python"
