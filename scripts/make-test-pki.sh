#!/usr/bin/env bash
# Builds a complete demo PKI under OUT (default certs/test/pki): a root CA, two agency CAs whose
# keys live in the agencies' own PKCS#11 tokens (gmchain's soft token), node certificates (one as a
# dual signing/encryption pair), admins, users and an auditor; revokes one user and publishes
# CRLs. The tests regenerate it; nothing here is ever a production key.
# Usage: scripts/make-test-pki.sh [OUT]   (needs target/<profile>/gmchain and libgmchain_softtoken.so)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="$(realpath -m "${1:-$here/certs/test/pki}")"
bin="${GMCHAIN_BIN:-${CARGO_TARGET_DIR:-$here/target}/debug/gmchain}"
profile="$here/hsm-profiles/gmchain-softtoken.toml"
[ -x "$bin" ] || { echo "make-test-pki: $bin not found; build it (cargo build -p gmchain -p softtoken)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"
cd "$out"
export GMCHAIN_OPERATOR="pki-script"
export GMCHAIN_SOFTTOKEN_DIR="$out/tokens"
mkdir -p "$GMCHAIN_SOFTTOKEN_DIR"
printf 'root-ca-passphrase\n' > root.pass
printf 'so-pin-1234\n' > so.pin
printf 'user-pin-1234\n' > user.pin
printf 'escrow-passphrase\n' > escrow.pass

# Root CA: key in the encrypted keystore of its CA directory.
"$bin" ca init --dir root --name "Gov Blockchain Root CA" --org "Gov Blockchain Root" --pass-file root.pass > root.pem

agency() { # name org token
  local name="$1" org="$2" token="$3"
  "$bin" keys init-token --hsm-profile "$profile" --label "$token" --so-pass-file so.pin --pass-file user.pin >/dev/null
  local uri="pkcs11:token=$token;object=ca"
  "$bin" keys generate --hsm-profile "$profile" --token-label "$token" --label ca --pass-file user.pin >/dev/null
  "$bin" keys csr --hsm-profile "$profile" --key "$uri" --pass-file user.pin --subject "CN=$name" --out "$token.csr"
  "$bin" ca intermediate --dir root --csr "$token.csr" --org "$org" --pass-file root.pass --out "$token-ca.pem"
  "$bin" ca init --dir "$token" --name "$name" --org "$org" --cert "$token-ca.pem" --chain root.pem \
    --key "$uri" --hsm-profile "$profile" --pass-file user.pin >/dev/null
}
agency "Agency A CA" "Agency A" agency-a
agency "Agency B CA" "Agency B" agency-b

leaf() { # ca_dir role cn [extra args]
  local dir="$1" role="$2" cn="$3"; shift 3
  # Holders' keys are encrypted key files here; a CSR from a key file goes through the same
  # builder as one from a token key (`gmchain keys csr`).
  "$bin" crypto keygen --encrypt --pass-file user.pin --iterations 10000 --out "$cn.key" --pubout "$cn.pub"
  "$bin" crypto csr --key "$cn.key" --pass-file user.pin --subject "CN=$cn" --out "$cn.csr"
  "$bin" ca issue --dir "$dir" --role "$role" --csr "$cn.csr" \
    --pass-file "$( [ "$dir" = root ] && echo root.pass || echo user.pin )" --out "$cn.pem" "$@"
}
leaf agency-a node-sign node-a1 --dual --escrow-pass-file escrow.pass
leaf agency-a node-sign node-a2
leaf agency-a admin admin-a
leaf agency-a user user-a1
leaf agency-a user user-a2
leaf agency-b node-sign node-b1
leaf agency-b admin admin-b
leaf agency-b user user-b1
leaf agency-b auditor auditor-b

# Revoke one user and publish CRLs.
serial="$(openssl x509 -in user-a2.pem -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')"
"$bin" ca revoke --dir agency-a --serial "$serial" --reason key-compromise --pass-file user.pin >/dev/null
"$bin" ca crl --dir agency-a --pass-file user.pin --out agency-a.crl
"$bin" ca crl --dir agency-b --pass-file user.pin --out agency-b.crl
"$bin" ca crl --dir root --pass-file root.pass --out root.crl
echo "demo PKI written to $out"
