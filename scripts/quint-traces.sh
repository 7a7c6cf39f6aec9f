#!/usr/bin/env bash
# Regenerates the ITF traces in crates/consensus/tests/itf/ from Malachite's Quint spec.
#
#   scripts/quint-traces.sh /path/to/malachite [/path/to/scratch/quint]
#
# Needs: a checkout of github.com/circlefin/malachite at SPEC_COMMIT (below), node >= 20 and npm.
# Quint is installed into the scratch directory (default /var/tmp/quint-$QUINT_VERSION), never
# into this repository. CI does not run this script: it replays the checked-in traces
# (cargo test -p consensus --test quint), which needs neither npm nor Quint.
#
# The traces come from `quint test` on the spec's own `run` tests, which are deterministic;
# the seed is fixed anyway. Quint stamps each trace with its creation time
# (#meta.description, #meta.timestamp); those two fields are removed so that a rerun on the
# same commit with the same Quint gives byte-identical files (`git diff` shows nothing).
set -euo pipefail

SPEC_COMMIT=4e8bb7dd602bf395b84b01b927058d553c550b6a
QUINT_VERSION=0.33.1
# antlr4ts 0.5.0-dev (published later, preferred by Quint's ^0.5.0-alpha.4 range) fails to
# load ("Class extends value undefined" in XPathLexer); Quint was built against alpha.4.
ANTLR4TS_VERSION=0.5.0-alpha.4
SEED=118

die() { echo "quint-traces: $*" >&2; exit 1; }

[[ $# -ge 1 ]] || die "usage: $0 MALACHITE_CHECKOUT [QUINT_SCRATCH_DIR]"
MALACHITE=$(cd "$1" && pwd) || die "no such directory: $1"
SCRATCH=${2:-/var/tmp/quint-$QUINT_VERSION}
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/crates/consensus/tests/itf
SPEC=$MALACHITE/specs/consensus/quint

[[ -f $SPEC/votekeeper.qnt ]] || die "$SPEC/votekeeper.qnt not found: is $MALACHITE a Malachite checkout?"
if git -C "$MALACHITE" rev-parse HEAD >/dev/null 2>&1; then
    HEAD=$(git -C "$MALACHITE" rev-parse HEAD)
    [[ $HEAD == "$SPEC_COMMIT" ]] || die "$MALACHITE is at $HEAD, not $SPEC_COMMIT (git -C $MALACHITE checkout $SPEC_COMMIT)"
else
    echo "quint-traces: $MALACHITE is not a git checkout; assuming it holds $SPEC_COMMIT" >&2
fi
command -v npm >/dev/null || die "npm not found"
command -v node >/dev/null || die "node not found"

QUINT=$SCRATCH/node_modules/.bin/quint
if [[ ! -x $QUINT ]] || [[ $("$QUINT" --version) != "$QUINT_VERSION" ]]; then
    mkdir -p "$SCRATCH"
    cat >"$SCRATCH/package.json" <<EOF
{
  "private": true,
  "dependencies": { "@informalsystems/quint": "$QUINT_VERSION" },
  "overrides": { "antlr4ts": "$ANTLR4TS_VERSION" }
}
EOF
    (cd "$SCRATCH" && npm install --no-audit --no-fund)
fi
[[ $("$QUINT" --version) == "$QUINT_VERSION" ]] || die "quint $QUINT_VERSION did not install in $SCRATCH"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# generate DIR SPEC_FILE MATCH: one trace per `run` test whose name matches MATCH.
# --backend typescript: the Rust backend is a binary Quint downloads at run time.
generate() {
    local dir=$1 file=$2 match=$3
    mkdir -p "$TMP/$dir"
    (cd "$(dirname "$SPEC/$file")" &&
        "$QUINT" test --backend typescript --seed "$SEED" --max-samples 1 \
            --match "$match" --out-itf "$TMP/$dir/{test}.itf.json" "$(basename "$file")")
}

# The vote keeper's scenario tests (votekeeperTest.qnt); the pure-function unit tests that
# the module imports from votekeeper.qnt have no state variables and are left out.
generate votekeeper tests/votekeeper/votekeeperTest.qnt \
    '^(synchronousConsensusTest|polkaAnyTest|polkaNilTest|skip.*Test|noSkip.*Test)$'
# The round state machine's scenario tests (consensusTest.qnt).
generate consensus tests/consensus/consensusTest.qnt '^Decide.*Test$'

rm -rf "$OUT/votekeeper" "$OUT/consensus"
node - "$TMP" "$OUT" <<'EOF'
const fs = require("fs");
const path = require("path");
const [tmp, out] = process.argv.slice(2);
for (const dir of ["votekeeper", "consensus"]) {
  fs.mkdirSync(path.join(out, dir), { recursive: true });
  for (const name of fs.readdirSync(path.join(tmp, dir)).sort()) {
    const trace = JSON.parse(fs.readFileSync(path.join(tmp, dir, name), "utf8"));
    delete trace["#meta"].description;
    delete trace["#meta"].timestamp;
    fs.writeFileSync(path.join(out, dir, name), JSON.stringify(trace, null, 1) + "\n");
    console.log(`${dir}/${name}: ${trace.states.length} states`);
  }
}
EOF
