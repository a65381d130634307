#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, then runs
#   1. cargo fmt --check, cargo clippy -D warnings, rustdoc -D warnings
#   2. every test, including those against the real Postfix and Dovecot (inside a private
#      network namespace, MAILMIG_REQUIRE_DAEMONS=1: a missing daemon fails, never skips)
#   3. every fuzz target: built, then run for a short smoke time
#   4. the benchmarks: built (run them with benches/compare-sed.sh)
#   5. the Debian package: built, lintian, installed into a throwaway Debian 13 root and checked
#      there (tests/packaging/check-deb.sh); `cargo publish --dry-run` of both crates
# Needs root (it installs Debian packages and creates a network namespace).
#
#   bash tests/run-all.sh                 # everything
#   FUZZ_SECONDS=60 bash tests/run-all.sh # longer fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
tracked_before=$(git status --porcelain --untracked-files=no 2>/dev/null || true)
step() { printf '\n==> %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "tests/run-all.sh: must run as root (installs Postfix/Dovecot, uses a network namespace)" >&2
  exit 77
fi

step "install Postfix + Dovecot (Debian packages) when missing"
bash tests/sandbox/sandbox.sh install

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  step "install cargo-fuzz"
  cargo install --locked cargo-fuzz
fi
if ! cargo deb --version >/dev/null 2>&1; then
  step "install cargo-deb"
  cargo install --locked cargo-deb
fi
# man pages are checked with groff and man; the package with lintian (Debian's packages)
if ! command -v groff >/dev/null || ! command -v man >/dev/null || ! command -v lintian >/dev/null; then
  step "install groff-base, man-db, lintian"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    groff-base man-db lintian </dev/null >/dev/null
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "build tests"
cargo test --workspace --locked --no-run --quiet

step "tests (inside a private network namespace; real daemons required)"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
MAILMIG_REQUIRE_DAEMONS=1 CI=${CI:-true} bash tests/sandbox/sandbox.sh netns \
  cargo test --workspace --locked --offline 2>&1 | tee "$test_log"
read -r passed failed < <(awk '/^test result:/ {p += $4; f += $6} END {print p + 0, f + 0}' "$test_log")

step "Debian package: build, lintian, install into a throwaway Debian 13 root"
bash tests/packaging/check-deb.sh

step "cargo publish --dry-run (mailmig-core, mailmig-cli)"
bash packaging/publish-dry-run.sh

step "fuzz targets: build and smoke-run ${FUZZ_SECONDS}s each"
# The fuzz workspace's lock file is committed and must already be in sync (nothing rewrites it).
(cd fuzz && cargo metadata --locked --offline --format-version 1 >/dev/null 2>&1 \
  || cargo metadata --locked --format-version 1 >/dev/null)
for target in $(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list); do
  mkdir -p "fuzz/corpus/$target"
  (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "corpus/$target" "../tests/fixtures/fuzzed/$target" -- \
     -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
  ) 2>&1 | tail -n 3
done

step "benchmarks build"
cargo bench --workspace --locked --no-run --quiet

step "the suite changed no tracked file"
tracked_after=$(git status --porcelain --untracked-files=no 2>/dev/null || true)
if [[ $tracked_after != "$tracked_before" ]]; then
  printf 'tests/run-all.sh changed tracked files:\n%s\n' "$tracked_after" >&2
  exit 1
fi

printf '\nall checks passed\n'
printf 'tests: %d passed, %d failed\n' "$passed" "$failed"
