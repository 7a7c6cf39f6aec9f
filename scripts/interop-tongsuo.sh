#!/usr/bin/env bash
# Interop tests of gmtls against Tongsuo 8.5 (RFC 8998, strict SM mode): the crate
# tests/interop-tongsuo, outside the workspace (variant-ssl's `links = "openssl"` must never meet
# another openssl-sys), with its own Cargo.lock and its own cached target directory. The first
# run builds Tongsuo from source (tongsuo-src through variant-ssl's feature `tongsuo`; a few
# minutes on 2 cores); later runs reuse the build in the target directory.
#
#   bash scripts/interop-tongsuo.sh            fmt check, clippy, tests
#   INTEROP_BENCH=1 bash scripts/interop-tongsuo.sh   ... and the handshake bench (a release
#                                              build: Tongsuo is built once more, for it)
#
# Installs on a fresh Debian what the Tongsuo build and the Python key schedule reference need
# (perl with its full module set for Configure, make, gcc, libc headers, python3).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in perl make gcc libc6-dev python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Tongsuo's Configure uses modules that perl-base lacks (IPC::Cmd is in perl's full set).
perl -MIPC::Cmd -MFile::Compare -MFile::Copy -e1 >/dev/null 2>&1 || need+=(perl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "interop-tongsuo: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 2
  fi
  echo "== apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/gmchain-ci-target}/interop-tongsuo"
manifest=tests/interop-tongsuo/Cargo.toml

echo "== interop-tongsuo: cargo fmt --check"
cargo fmt --manifest-path "$manifest" -- --check
echo "== interop-tongsuo: build (target $CARGO_TARGET_DIR)"
start=$(date +%s)
cargo test --manifest-path "$manifest" --locked --no-run
echo "== interop-tongsuo: built in $(( $(date +%s) - start )) s"
echo "== interop-tongsuo: cargo clippy"
cargo clippy --manifest-path "$manifest" --locked --all-targets -- -D warnings
echo "== interop-tongsuo: cargo test"
cargo test --manifest-path "$manifest" --locked
if [ "${INTEROP_BENCH:-0}" = 1 ]; then
  echo "== interop-tongsuo: handshake bench"
  cargo bench --manifest-path "$manifest" --locked --bench handshakes
fi
