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
# pip fetches the tongsuopy wheel (the BabaSSL peer).
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
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

# The extra quick peer: the libssl (BabaSSL 8.3.2) inside PyPI's tongsuopy 1.0.1 wheel, unpacked
# (not installed: only its .so is used, through ctypes) into the target directory, pinned by hash.
wheel_sha256=daabaf13e113af1e1ffca1b5e321da40273b64a0359f9c1b1146f1d9de06ccda
export TONGSUOPY_SO="$CARGO_TARGET_DIR/tongsuopy/tongsuopy/backends/_tongsuo.abi3.so"
if [ ! -f "$TONGSUOPY_SO" ]; then
  echo "== interop-tongsuo: fetching the tongsuopy 1.0.1 wheel (BabaSSL peer)"
  wheels="$CARGO_TARGET_DIR/tongsuopy-wheel"
  mkdir -p "$wheels"
  python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi abi3 \
    -d "$wheels" tongsuopy==1.0.1
  wheel=$(ls "$wheels"/tongsuopy-1.0.1-*.whl)
  echo "$wheel_sha256  $wheel" | sha256sum -c --quiet
  python3 -m zipfile -e "$wheel" "$CARGO_TARGET_DIR/tongsuopy"
fi

# The crate's own Cargo.lock also pins the path crates' dependencies: when a workspace crate it
# uses (gmtls, pki, crypto, crypto-sm and theirs) gains or changes a dependency, refresh it.
if ! cargo metadata --manifest-path "$manifest" --locked --format-version 1 >/dev/null 2>&1; then
  echo "interop-tongsuo: tests/interop-tongsuo/Cargo.lock is out of date with the workspace crates;" \
    "refresh it with: cargo update --manifest-path $manifest --workspace (and commit it)" >&2
  exit 2
fi
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
