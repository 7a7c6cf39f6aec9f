#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need on a fresh Debian machine,
# then checks formatting and lints and runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# This is the CI test command: tests that could skip for a missing peer (the GmSSL bridge,
# GMCHAIN_ALLOW_SKIP=1) fail instead when CI is set (crates/test-support).
export CI="${CI:-true}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== no ring, no aws-lc in the build graph (rustls runs only gmtls's GM provider)"
bash scripts/check-no-ring.sh
echo "== the console's vendored sm-crypto is the pinned, integrity-checked package"
bash scripts/console-vendor.sh
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build -p softtoken (the PKCS#11 module the HSM tests load)"
cargo build --locked -p softtoken
echo "== the previous release's gmchain for the rolling-upgrade test (release/previous)"
# Before the tests are built: building the old commit in this CARGO_TARGET_DIR replaces
# debug/gmchain, and the build of `cargo test` below puts the current binary back. The test
# itself never builds it (tests/upgrade.rs).
bash scripts/build-previous-release.sh
echo "== cargo test"
cargo test --workspace --locked
echo "== SM4 timing report, dudect-style, per backend (an artifact, not a gate: a shared machine is noisy)"
mkdir -p "${CARGO_TARGET_DIR:-target}/ci-artifacts"
cargo run --locked --release -q -p crypto-sm --example sm4_dudect -- --seconds 30 \
  --out "${CARGO_TARGET_DIR:-target}/ci-artifacts/sm4-dudect.txt" \
  || echo "the SM4 timing report did not complete (not a gate)"
echo "== interop: gmtls against Tongsuo 8.5 (strict SM mode) and BabaSSL 8.3 (tests/interop-tongsuo)"
bash scripts/interop-tongsuo.sh
