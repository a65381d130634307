#!/usr/bin/env bash
# The Debian package, end to end (run by tests/run-all.sh, as root):
#   1. build it (packaging/build-deb.sh), time it;
#   2. lintian: no error, warning or info tag outside the explained overrides;
#   3. install it into a throwaway Debian 13 root — an overlayfs over the sandbox's trixie root
#      (never written: the overlay's upper layer is a temporary directory, in a private mount
#      namespace) with man-db, bash, zsh and fish from Debian's packages — and check there:
#      `mailmig --version` names this commit, `man -w` finds every page, `man` renders
#      mailmig(8) with its EXIT STATUS, the bash and fish completions complete a command, the zsh
#      one parses, /var/lib/mailmig is 0700, `dpkg --verify` finds every file intact;
#   4. `dpkg -r`: every file of the package gone, /var/lib/mailmig kept (state, as policy says);
#      `dpkg -P`: it goes too, and the root is as before the install; a purge keeps a state
#      directory with an unfinished run.
# Ends with `packaging: N passed, 0 failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."
readonly TRIXIE_ROOT=${MAILMIG_TRIXIE_ROOT:-/var/cache/mailmig-sandbox/trixie}
readonly MIRROR=${MAILMIG_TRIXIE_MIRROR:-http://deb.debian.org/debian}
passed=0
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; printf 'packaging: %d passed, 1 failed\n' "$passed"; exit 1; }

[[ $(id -u) -eq 0 ]] || { echo "check-deb.sh: must run as root" >&2; exit 77; }
[[ -f $TRIXIE_ROOT/.mailmig-sandbox-built ]] \
  || fail "no Debian 13 root at $TRIXIE_ROOT (run: bash tests/sandbox/sandbox.sh install)"
if ! command -v lintian >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends lintian \
    </dev/null >/dev/null || fail "cannot install lintian"
fi

# 1. build
t0=$EPOCHSECONDS
deb=$(bash packaging/build-deb.sh | tail -n 1)
[[ -f $deb ]] || fail "packaging/build-deb.sh made no package"
ok "built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $((EPOCHSECONDS - t0)) s"

# 2. lintian (the overrides shipped in the package are each explained in docs/packaging.md)
tags=$(lintian -I --tag-display-limit 0 "$deb" 2>&1 | grep -E '^[EWIX]: ' || true)
[[ -z $tags ]] || fail "lintian: $tags"
ok "lintian clean (lintian $(lintian --version | awk '{print $2}'))"

# 3.-4. in a throwaway root, in a private mount namespace (the mounts vanish with it)
commit=$(git rev-parse --short=12 HEAD)
work=$(mktemp -d /var/tmp/mailmig-deb.XXXXXX)
trap 'rm -rf --one-file-system "$work"' EXIT
cp "$deb" "$work/mailmig.deb"
export TRIXIE_ROOT MIRROR commit work passed
unshare --mount --propagation private bash tests/packaging/in-root.sh
