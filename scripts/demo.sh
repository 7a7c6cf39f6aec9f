#!/usr/bin/env bash
# A tour: the SM2/SM3/SM4 toolbox mixed with OpenSSL 3 to show the files interoperate; keys in
# a PKCS#11 token; a CA issuing the node's and a user's certificates; a single-validator chain
# whose node signs blocks (and its GM TLS handshakes) with its key inside the token; a client
# over mutual GM TLS 1.3 with the user's token key; a document anchored and its receipt
# verified offline; a conformance report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The dev profile (crypto crates optimised) shares its build with scripts/test.sh; a release
# build would compile RocksDB's C++ a second time (~30 min on 2 cores).
cargo build --locked -q -p gmchain -p softtoken
bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/gmchain"
profile="$PWD/hsm-profiles/gmchain-softtoken.toml"
export GMCHAIN_PKCS11_MODULE="${CARGO_TARGET_DIR:-$PWD/target}/debug/libgmchain_softtoken.so"
work="$(mktemp -d)"
node_pid=""
trap '[ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; rm -rf "$work"' EXIT
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

# A user identity: the user's key is generated in the token and never leaves it; the CA sees a CSR.
say "$bin keys generate --hsm-profile … --token-label agency-a --label alice"
alice="$("$bin" keys generate --hsm-profile "$profile" --token-label agency-a --label alice --pass-file user.pin)"
echo "$alice"
run "$bin" keys csr --hsm-profile "$profile" --key "$alice" --pass-file user.pin --subject "CN=alice" --out alice.csr
run "$bin" ca issue --dir root-ca --role user --csr alice.csr --pass-file root.pass --out alice.pem
# An auditor identity, its key in the token too: it signs the conformance report.
auditor="$("$bin" keys generate --hsm-profile "$profile" --token-label agency-a --label auditor --pass-file user.pin)"
run "$bin" keys csr --hsm-profile "$profile" --key "$auditor" --pass-file user.pin --subject "CN=auditor" --out auditor.csr
run "$bin" ca issue --dir root-ca --role auditor --csr auditor.csr --pass-file root.pass --out auditor.pem

# The chain: genesis names the organisation's CA (with its CRL) and the validator; the node's
# key is the token key node-1, reached by its pkcs11: URI.
grpc_port=$(( 20000 + RANDOM % 20000 )); metrics_port=$(( grpc_port + 1 ))
cat > node.toml <<TOML
mode = "production"
data_dir = "chain"

[key]
key = "$uri"
hsm_profile = "$profile"
pass_file = "user.pin"
certificate = "node-1.pem"

[api]
listen = "127.0.0.1:$grpc_port"
metrics_listen = "127.0.0.1:$metrics_port"

[block]
interval_ms = 200

[chain]
chain_id = "agency-a-demo"
test_chain = true                   # genesis marks a test chain (not for production data)

[[organisations]]
name = "Agency A"
ca_cert = "root.pem"
crl = "root.crl"

[[validators]]
name = "node-1"
cert = "node-1.pem"
TOML
run cat node.toml
run "$bin" node init --config node.toml
say "$bin node start --config node.toml &"
"$bin" node start --config node.toml 2> node.log &
node_pid=$!
# The node's API is mutual GM TLS 1.3 (RFC 8998) only: the node signs its handshakes with the
# token key node-1; alice connects with her token key. Her client profile holds the address,
# the TLS key and certificate and the CA to trust (with its CRL: revocation fails closed).
node="127.0.0.1:$grpc_port"
cat > alice.toml <<TOML
node = "$node"
node_name = "node-1"
node_organisation = "Agency A"
tls_key = "$alice"
hsm_profile = "$profile"
pass_file = "user.pin"
tls_cert = "alice.pem"
ca = ["root.pem"]
crls = ["root.crl"]
TOML
run cat alice.toml
export GMCHAIN_CLIENT_PROFILE="$PWD/alice.toml"
for _ in $(seq 100); do "$bin" query status >/dev/null 2>&1 && break; sleep 0.1; done
say "$bin query status   (GMCHAIN_CLIENT_PROFILE=alice.toml: over TLS_SM4_GCM_SM3)"
"$bin" query status
say "openssl s_client -connect $node   (Debian's OpenSSL has no RFC 8998 suite: the node refuses it)"
openssl s_client -connect "$node" -brief </dev/null 2>&1 | grep -iE 'alert|error' | head -n 2 || true
run "$bin" tx attest notice.txt --metadata "records office notice" --key "$alice" --hsm-profile "$profile" --pass-file user.pin --cert alice.pem --node "$node" --out notice.receipt.json
run "$bin" query attestation --file notice.txt --node "$node"
say "$bin receipt verify notice.receipt.json notice.txt --genesis chain/genesis.json   (offline: only the genesis file is trusted)"
"$bin" receipt verify notice.receipt.json notice.txt --genesis chain/genesis.json
say "$bin receipt verify notice.receipt.json forged.txt --genesis chain/genesis.json   (must fail with exit 1)"
"$bin" receipt verify notice.receipt.json forged.txt --genesis chain/genesis.json || echo "exit $?"
say "curl http://127.0.0.1:$metrics_port/metrics | grep gmchain_"
(exec 3<>"/dev/tcp/127.0.0.1/$metrics_port"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; grep -E '^gmchain_(height|blocks|txs_committed|rocksdb)' <&3) || true
# The conformance suite against the code, the token and the live node (alice's token key signs
# the node checks' transactions); the auditor's token key signs report.json, verified offline.
report_dir="${GMCHAIN_REPORT_DIR:-$OLDPWD/reports/conformance}"
# Exit 1 names the mandatory clauses NOT MET by a failed check (GM/T 0111 §7.1 until non-GM
# algorithms are unreachable in production); any other exit stops the demo.
run "$bin" conformance run --out-dir "$report_dir" --hsm-profile "$profile" --token agency-a --pass-file user.pin \
    --node "$node" --genesis chain/genesis.json --key "$alice" --cert alice.pem \
    --sign-key "$auditor" --sign-cert auditor.pem \
  || { rc=$?; [ "$rc" -eq 1 ] || exit "$rc"; echo "exit 1 (see the report)"; }
run "$bin" conformance verify-report "$report_dir/report.json" --anchor root.pem --crl root.crl
say "kill -TERM \$node_pid   (graceful shutdown)"
kill -TERM "$node_pid"; wait "$node_pid" || true; node_pid=""
run "$bin" node verify-store --config node.toml

cd - >/dev/null
echo
echo "Open $report_dir/report.html for the clause-by-clause report."
