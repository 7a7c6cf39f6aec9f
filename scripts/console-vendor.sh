#!/usr/bin/env bash
# CI guard (issue 17): the console's browser-side SM2/SM3 (crates/node/console/vendor/) is the
# dist build of the sm-crypto version pinned in crates/node/console/package.json, whose tarball
# package-lock.json pins by integrity. Reinstalls it with `npm ci` (which refuses a tarball
# whose hash differs from the lock file) and fails if a committed vendor file differs from the
# package's. To change the version: edit package.json, `npm install --ignore-scripts` there,
# then run this script with --update and review the diff.
set -euo pipefail
cd "$(dirname "$0")/../crates/node/console"

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
pkg=node_modules/sm-crypto
pinned=$(node -p "require('./package.json').dependencies['sm-crypto']")
installed=$(node -p "require('./$pkg/package.json').version")
if [ "$pinned" != "$installed" ]; then
    echo "console-vendor: FAILED: package.json pins sm-crypto $pinned, npm ci installed $installed" >&2
    exit 1
fi
status=0
for f in dist/sm2.js dist/sm3.js LICENCE_MIT; do
    vendored="vendor/$(basename "$f")"
    [ "$f" = LICENCE_MIT ] && vendored=vendor/sm-crypto-LICENCE_MIT
    if [ "${1:-}" = --update ]; then
        cp "$pkg/$f" "$vendored"
    elif ! cmp -s "$pkg/$f" "$vendored"; then
        echo "console-vendor: FAILED: $vendored differs from sm-crypto $pinned's $f" >&2
        status=1
    fi
done
[ $status = 0 ] && echo "console-vendor: vendor/ is sm-crypto $pinned as package-lock.json pins it"
exit $status
