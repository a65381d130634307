#!/usr/bin/env bash
# Benchmark mailmig's codecs against GNU sed passes over the same files.
#
#   bash benches/compare-sed.sh                       # 1,000,000 aliases and 1,000,000 users
#   MAILMIG_BENCH_ALIASES=100000 MAILMIG_BENCH_USERS=100000 bash benches/compare-sed.sh
#
# For each format it generates the input (benches/src/lib.rs), times GNU sed over it (output to
# /dev/null, best of 5), runs the criterion benches on the same file, and prints a table with
# the ratio of mailmig's parse + render (to /dev/null) to sed.
set -euo pipefail
cd "$(dirname "$0")/.."
ALIASES=${MAILMIG_BENCH_ALIASES:-1000000}
USERS=${MAILMIG_BENCH_USERS:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# best_ns CMD... : best wall time of 5 runs, in ns (stdout of CMD discarded)
best_ns() {
  local best= start end ns
  for _ in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$@" > /dev/null
    end=$(date +%s%N)
    ns=$((end - start))
    if [[ -z "$best" || $ns -lt $best ]]; then best=$ns; fi
  done
  echo "$best"
}

cargo build --release --quiet -p mailmig-benches --bin gen-input

# ---------------------------------------------------------------- virtual map
map=$work/virtual
target/release/gen-input virtual "$ALIASES" "$map"
map_size=$(stat -c %s "$map")
echo "virtual: $ALIASES aliases, $map_size bytes, $(grep -c '' "$map") lines"
sed_map=$(best_ns sed 's/$/ HOLD/' "$map")
# The published maintalias.sh approach: one regex over the file per address to hold.
maint_map=$(best_ns sed -n 's/^\([^[:space:]]*\)[[:space:]].*user12345@d26\.example.*$/\1 HOLD Planned maintenance/p' "$map")
MAILMIG_BENCH_FILE="$map" cargo bench --quiet -p mailmig-benches --bench tables -- --noplot \
  2>&1 | grep -E '^(virtual_1m|  +time)' || true

# ---------------------------------------------------------------- passwd-file
pw=$work/users
target/release/gen-input passwd "$USERS" "$pw"
pw_size=$(stat -c %s "$pw")
echo "passwd: $USERS users, $pw_size bytes"
sed_pw=$(best_ns sed 's/$/ x/' "$pw")
target_user="user$((USERS * 9 / 10))@d$(((USERS * 9 / 10) % 97))\\.example"
lock_pw=$(best_ns sed "s/^\\($target_user:.*\\)\$/\\1 allow_nets=/" "$pw")
MAILMIG_BENCH_PASSWD="$pw" MAILMIG_BENCH_USERS="$USERS" \
  cargo bench --quiet -p mailmig-benches --bench passwd -- --noplot \
  2>&1 | grep -E '^(passwd_1m|  +time)' || true

python3 - "$map_size" "$sed_map" "$maint_map" "$pw_size" "$sed_pw" "$lock_pw" <<'PY'
import json, sys, pathlib
map_size, sed_map, maint_map, pw_size, sed_pw, lock_pw = map(int, sys.argv[1:])
def mean(group, name):
    p = pathlib.Path("target/criterion") / group / name / "new" / "estimates.json"
    return json.loads(p.read_text())["mean"]["point_estimate"] if p.exists() else None
def row(label, ns, size=None):
    tp = f"{size / 1e6 / (ns / 1e9):.0f} MB/s" if size else "-"
    print(f"| {label} | {ns / 1e6:.1f} ms | {tp} |")
print("\n| operation | time | throughput |\n|---|---|---|")
row(f"virtual ({map_size/1e6:.0f} MB): GNU sed 's/$/ HOLD/'", sed_map, map_size)
row("virtual: GNU sed, maintalias-style regex for one address", maint_map, map_size)
for name in ["parse", "render_vec", "write_to_devnull", "parse_render"]:
    ns = mean("virtual_1m", name)
    if ns: row(f"virtual: mailmig {name}", ns, map_size)
for name in ["closure_index", "reverse_closure_one", "reverse_closure_1000_one_pass"]:
    ns = mean("virtual_1m", name)
    if ns: row(f"virtual: {name}", ns)
row(f"passwd ({pw_size/1e6:.0f} MB): GNU sed 's/$/ x/'", sed_pw, pw_size)
row("passwd: GNU sed adding allow_nets= to one user", lock_pw, pw_size)
for name in ["parse", "parse_render", "parse_edit_render"]:
    ns = mean("passwd_1m", name)
    if ns: row(f"passwd: mailmig {name}", ns, pw_size)
pr = mean("virtual_1m", "parse_render")
if pr:
    print(f"\nvirtual parse+render: {sed_map/pr:.2f}x the throughput of sed 's/$/ HOLD/' (target 2.5x), {maint_map/pr:.2f}x maintalias-style sed")
pe = mean("passwd_1m", "parse_edit_render")
pp = mean("passwd_1m", "parse_render")
if pp and pe:
    print(f"passwd parse+render: {sed_pw/pp:.2f}x sed 's/$/ x/'; parse+edit+render: {lock_pw/pe:.2f}x the sed edit")
PY
