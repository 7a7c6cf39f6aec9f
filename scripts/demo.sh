#!/usr/bin/env bash
# The main job while there is no node yet: a short tour of the SM2/SM3/SM4 toolbox, mixed with
# OpenSSL 3 to show the files interoperate, and a conformance report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -q -p gmchain
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gmchain"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "$*"; "$@"; }

printf 'demo passphrase\n' > pass.txt
printf 'Notice 2026-118: opening hours of the records office.\n' > notice.txt
run "$bin" crypto keygen --encrypt --pass-file pass.txt --out agency.key --pubout agency.pub
run head -n 1 agency.key
run "$bin" crypto sm3 notice.txt
run "$bin" crypto sign --key agency.key --pass-file pass.txt --out notice.sig notice.txt
run "$bin" crypto verify --pubkey agency.pub --sig notice.sig notice.txt
say "openssl pkeyutl -verify … -pkeyopt distid:1234567812345678   (OpenSSL checks gmchain's signature)"
openssl pkeyutl -verify -pubin -inkey agency.pub -rawin -in notice.txt -digest sm3 -sigfile notice.sig -pkeyopt distid:1234567812345678
printf 'Notice 2026-118: opening hours of the records office!\n' > forged.txt
say "$bin crypto verify --pubkey agency.pub --sig notice.sig forged.txt   (must fail with exit 1)"
"$bin" crypto verify --pubkey agency.pub --sig notice.sig forged.txt || echo "exit $?"
run "$bin" crypto encrypt --pubkey agency.pub --out notice.enc notice.txt
run "$bin" crypto decrypt --key agency.key --pass-file pass.txt notice.enc
head -c 16 /dev/urandom > sm4.key
run "$bin" crypto sm4 encrypt --mode gcm --key-file sm4.key --iv 00112233445566778899aabb --out notice.gcm notice.txt
run "$bin" crypto sm4 decrypt --mode gcm --key-file sm4.key --iv 00112233445566778899aabb notice.gcm

cd - >/dev/null
report_dir="${GMCHAIN_REPORT_DIR:-$PWD/reports/conformance}"
run "$bin" conformance run --out-dir "$report_dir"
echo
echo "Open $report_dir/report.html for the clause-by-clause report."
