#!/usr/bin/env bash
# What users run, end to end: each mailmig command as a whole process beside its reference
# (GNU sed, grep -F, sed + postmap) on the same generated files, interleaved, medians, ratios and
# peak RSS (benches/cli.py). Needs postmap (Debian's postfix) for the hold case.
#
#   bash benches/cli.sh                                   # 1,000,000 aliases and users, 5 runs
#   MAILMIG_BENCH_ALIASES=100000 MAILMIG_BENCH_USERS=100000 MAILMIG_BENCH_RUNS=3 bash benches/cli.sh
#   bash benches/cli.sh floor      # the floor under the whole-table commands instead (floor.py)
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

# A Postfix configuration directory for `hold add`: the alias map and the access map it holds in.
mkdir "$work/pf"
cat > "$work/pf/main.cf" <<EOF
compatibility_level = 3.6
virtual_alias_maps = hash:$work/virtual
smtpd_recipient_restrictions = check_recipient_access hash:$work/access, permit_mynetworks, reject_unauth_destination
EOF
: > "$work/access"
postmap -c "$work/pf" "hash:$work/access"

echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(uname -m); mailmig $(git rev-parse --short HEAD 2>/dev/null || echo '?')" >&2
if [ "${1:-}" = floor ]; then
    exec python3 benches/floor.py "$work" "$PWD/target/release/mailmig" "$PWD/target/release/floor" "$RUNS" "$ALIASES" "$USERS"
fi
python3 benches/cli.py "$work" "$PWD/target/release/mailmig" "$RUNS" "$ALIASES" "$USERS"
