#!/usr/bin/env bash
# Builds the previous release's `gmchain` (release/previous: tag, commit, version) for the
# rolling-upgrade test (tests/upgrade.rs) and stores it as
# $CARGO_TARGET_DIR/releases/gmchain-<version>, with the commit it was built from in
# gmchain-<version>.commit. A stored binary whose recorded commit matches is reused.
#
# The old commit is checked out with `git worktree add --detach` into a temporary directory
# (removed on exit) and built there with the same CARGO_TARGET_DIR as the current tree, so
# the dependencies both share (RocksDB's C++ above all) are built once. That build replaces
# $CARGO_TARGET_DIR/debug/gmchain with the old binary: run this script BEFORE building or
# testing the current tree (scripts/test.sh does), never while tests run; the next cargo
# build of the current tree puts the current binary back.
#
# A clone without the commit (shallow) fetches it; if that fails the script fails: it never
# skips. Exit codes: 0 built or reused; 1 the build failed or the binary is not the release;
# 2 release/previous is wrong or the commit cannot be had.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

die() { echo "build-previous-release: $2" >&2; exit "$1"; }

file="$root/release/previous"
[ -f "$file" ] || die 2 "$file is missing (it names the previous release: tag, commit, version)"
field() {
    local v
    v=$(sed -n "s/^$1=//p" "$file")
    [ -n "$v" ] || die 2 "$file has no '$1=' line"
    printf '%s' "$v"
}
tag=$(field tag)
commit=$(field commit)
version=$(field version)
[[ "$commit" =~ ^[0-9a-f]{40}$ ]] || die 2 "$file: commit '$commit' is not a full 40-hex commit id"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die 2 "$file: version '$version' is not MAJOR.MINOR.PATCH"

target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac
out="$target/releases"
bin="$out/gmchain-$version"
if [ -x "$bin" ] && [ "$(cat "$bin.commit" 2>/dev/null)" = "$commit" ]; then
    echo "build-previous-release: reusing $bin (built from $tag, $commit)"
    exit 0
fi

git rev-parse --git-dir >/dev/null 2>&1 \
    || die 2 "$root is not a git clone: the previous release is built from its commit ($tag)"
# The commit, fetched if this clone lacks it (a shallow CI clone); never skipped.
if ! git cat-file -e "$commit^{commit}" 2>/dev/null; then
    echo "build-previous-release: commit $commit ($tag) is not in this clone; fetching it"
    fetched=no
    for remote in $(git remote); do
        if git fetch --quiet --depth=1 "$remote" "$commit" 2>/dev/null \
            || git fetch --quiet "$remote" "refs/tags/$tag:refs/tags/$tag" 2>/dev/null; then
            git cat-file -e "$commit^{commit}" 2>/dev/null && { fetched=yes; break; }
        fi
    done
    [ "$fetched" = yes ] || die 2 "commit $commit ($tag) is not in this clone and could not be fetched (remotes: $(git remote | paste -sd' ' - | sed 's/^$/none/')); fetch the tag (git fetch origin tag $tag) or unshallow the clone (git fetch --unshallow)"
fi
# A tag that is present must name the recorded commit (a moved tag is a mistake to stop at).
if tagged=$(git rev-parse --verify --quiet "refs/tags/$tag^{commit}"); then
    [ "$tagged" = "$commit" ] || die 2 "tag $tag names $tagged, but $file says $commit; correct one of them"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gmchain-previous.XXXXXX")
cleanup() {
    git -C "$root" worktree remove --force "$tmp/src" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    git -C "$root" worktree prune >/dev/null 2>&1 || true
}
trap cleanup EXIT
git worktree add --quiet --detach "$tmp/src" "$commit"

echo "build-previous-release: building gmchain $version from $tag ($commit) in $target"
started=$(date +%s)
(cd "$tmp/src" && CARGO_TARGET_DIR="$target" cargo build --locked -p gmchain) \
    || die 1 "cargo build of gmchain at $tag ($commit) failed (above)"
echo "build-previous-release: built in $(( $(date +%s) - started )) s"

built="$target/debug/gmchain"
said=$("$built" --version) || die 1 "$built --version failed"
# `gmchain X.Y.Z`, and from 0.2.0 on ` (commit ID)` after it.
case "$said" in
    "gmchain $version" | "gmchain $version "*) ;;
    *) die 1 "the binary built from $commit says '$said', not 'gmchain $version': release/previous is wrong" ;;
esac
mkdir -p "$out"
# Copied (not linked: the next build of the current tree replaces debug/gmchain), then renamed
# so a reader never sees half a binary; the commit is recorded last.
rm -f "$bin.commit"
cp "$built" "$bin.tmp.$$"
mv -f "$bin.tmp.$$" "$bin"
printf '%s\n' "$commit" >"$bin.commit.tmp.$$"
mv -f "$bin.commit.tmp.$$" "$bin.commit"
echo "build-previous-release: stored $bin"
