#!/usr/bin/env bash
# The floor under the whole-table commands (benches/floor.py, benches/src/bin/floor.rs): the
# least work a check of each input can do, timed as processes beside sed and mailmig.
#
#   bash benches/floor.sh                                  # 1,000,000 aliases and users, 5 runs
#   MAILMIG_BENCH_ALIASES=100000 MAILMIG_BENCH_USERS=100000 MAILMIG_BENCH_RUNS=3 bash benches/floor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ALIASES=${MAILMIG_BENCH_ALIASES:-1000000}
USERS=${MAILMIG_BENCH_USERS:-1000000}
RUNS=${MAILMIG_BENCH_RUNS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --quiet -p mailmig-cli -p mailmig-benches --bin mailmig --bin gen-input --bin floor
target/release/gen-input virtual "$ALIASES" "$work/virtual"
target/release/gen-input passwd "$USERS" "$work/users"

echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m); mailmig $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
python3 benches/floor.py "$work" "$PWD/target/release/mailmig" "$PWD/target/release/floor" "$RUNS" "$ALIASES" "$USERS"
