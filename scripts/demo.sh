#!/usr/bin/env bash
# The main job while there is no node yet: a short tour of the SM2/SM3/SM4 toolbox, mixed with
# OpenSSL 3 to show the files interoperate, and a conformance report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -q -p gmchain -p softtoken
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/gmchain"
profile="$PWD/hsm-profiles/gmchain-softtoken.toml"
export GMCHAIN_PKCS11_MODULE="${CARGO_TARGET_DIR:-$PWD/target}/release/libgmchain_softtoken.so"
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

# Keys in a PKCS#11 token: gmchain's software token, loaded like a vendor HSM module.
export GMCHAIN_SOFTTOKEN_DIR="$work/token"
mkdir -p "$GMCHAIN_SOFTTOKEN_DIR"
printf 'demo-so-pin\n' > so.pin
printf 'demo-user-pin\n' > user.pin
run "$bin" keys init-token --hsm-profile "$profile" --label agency-a --so-pass-file so.pin --pass-file user.pin
say "$bin keys generate --hsm-profile … --token-label agency-a --label node-1"
uri="$("$bin" keys generate --hsm-profile "$profile" --token-label agency-a --label node-1 --pass-file user.pin)"
echo "$uri"
run "$bin" keys sign --hsm-profile "$profile" --key "$uri" --pass-file user.pin --out notice.token.sig notice.txt
run "$bin" keys pubkey --hsm-profile "$profile" --key "$uri" --pass-file user.pin --out node-1.pub
say "openssl pkeyutl -verify -inkey node-1.pub … (OpenSSL checks the token's signature)"
openssl pkeyutl -verify -pubin -inkey node-1.pub -rawin -in notice.txt -digest sm3 -sigfile notice.token.sig -pkeyopt distid:1234567812345678
run "$bin" keys csr --hsm-profile "$profile" --key "$uri" --pass-file user.pin --subject "CN=node-1,OU=node,O=Agency A" --out node-1.csr
say "openssl req -in node-1.csr -verify -noout -vfyopt distid:1234567812345678"
openssl req -in node-1.csr -verify -noout -vfyopt distid:1234567812345678
run "$bin" keys check --hsm-profile "$profile" --token-label agency-a --pass-file user.pin

# Identities: a root CA issues the node its certificate from the CSR signed inside the token.
export GMCHAIN_OPERATOR="demo-admin"
printf 'demo-root-passphrase\n' > root.pass
say "$bin ca init --dir root-ca --name \"Agency A Root CA\" --org \"Agency A\" --pass-file root.pass > root.pem"
"$bin" ca init --dir root-ca --name "Agency A Root CA" --org "Agency A" --pass-file root.pass > root.pem
run "$bin" ca issue --dir root-ca --role node-sign --csr node-1.csr --pass-file root.pass --out node-1.pem
run openssl x509 -in node-1.pem -noout -subject -issuer
run "$bin" ca crl --dir root-ca --pass-file root.pass --out root.crl
run "$bin" ca verify --anchor root.pem --crl root.crl --role node-sign node-1.pem
run "$bin" ca audit-verify --dir root-ca

report_dir="${GMCHAIN_REPORT_DIR:-$OLDPWD/reports/conformance}"
run "$bin" conformance run --out-dir "$report_dir" --hsm-profile "$profile" --token agency-a --pass-file user.pin
cd - >/dev/null
echo
echo "Open $report_dir/report.html for the clause-by-clause report."
