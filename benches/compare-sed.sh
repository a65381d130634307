#!/usr/bin/env bash
# Benchmark mailmig's table codec against a GNU sed pass over the same file.
#
#   bash benches/compare-sed.sh            # 1,000,000 aliases (~60 MB)
#   MAILMIG_BENCH_ALIASES=100000 bash benches/compare-sed.sh
#
# 1. generates the virtual map (benches/src/lib.rs: comments, continuation lines,
#    multi-destination and nested aliases);
# 2. times `sed 's/$/ HOLD/'` over it (the published maintalias.sh approach), best of 5;
# 3. runs the criterion benches (benches/benches/tables.rs) on the same file;
# 4. prints throughputs and the ratio parse+render / sed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${MAILMIG_BENCH_ALIASES:-1000000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
map=$work/virtual

cargo run --release --quiet -p mailmig-benches --bin gen-map -- "$N" "$map"
size=$(stat -c %s "$map")
echo "input: $N aliases, $size bytes, $(grep -c '' "$map") lines"

best_ns=
for _ in 1 2 3 4 5; do
  start=$(date +%s%N)
  sed 's/$/ HOLD/' "$map" > /dev/null
  end=$(date +%s%N)
  ns=$((end - start))
  if [[ -z "$best_ns" || $ns -lt $best_ns ]]; then best_ns=$ns; fi
done
echo "sed 's/\$/ HOLD/': best of 5 = $((best_ns / 1000000)) ms"

# The published maintalias.sh approach: one regex over the file per address to hold.
script='s/^\([^[:space:]]*\)[[:space:]].*user12345@d26\.example.*$/\1 HOLD Planned maintenance/p'
maint_ns=
for _ in 1 2 3; do
  start=$(date +%s%N)
  sed -n "$script" "$map" > /dev/null
  end=$(date +%s%N)
  ns=$((end - start))
  if [[ -z "$maint_ns" || $ns -lt $maint_ns ]]; then maint_ns=$ns; fi
done
echo "sed maintalias-style (one address): best of 3 = $((maint_ns / 1000000)) ms"

MAILMIG_BENCH_FILE="$map" cargo bench --quiet -p mailmig-benches --bench tables -- --noplot \
  2>&1 | grep -E '^(virtual_1m|  +time|  +thrpt)' || true

python3 - "$size" "$best_ns" "$maint_ns" <<'PY'
import json, sys, pathlib
size, sed_ns, maint_ns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
root = pathlib.Path("target/criterion/virtual_1m")
def mean(name):
    p = root / name / "new" / "estimates.json"
    return json.loads(p.read_text())["mean"]["point_estimate"] if p.exists() else None
mb = size / 1e6
print()
print("| operation | time | throughput |")
print("|---|---|---|")
print(f"| GNU sed 's/$/ HOLD/' (best of 5) | {sed_ns/1e6:.1f} ms | {mb/(sed_ns/1e9):.0f} MB/s |")
print(f"| GNU sed, maintalias-style regex for one address (best of 3) | {maint_ns/1e6:.1f} ms | {mb/(maint_ns/1e9):.0f} MB/s |")
for name in ["parse", "render_vec", "write_to_devnull", "parse_render", "closure_index", "reverse_closure_one", "reverse_closure_1000_one_pass"]:
    ns = mean(name)
    if ns is None:
        continue
    tp = f"{mb/(ns/1e9):.0f} MB/s" if name in ("parse", "render_vec", "write_to_devnull", "parse_render") else "-"
    print(f"| {name} | {ns/1e6:.3f} ms | {tp} |")
pr = mean("parse_render")
if pr:
    print(f"\nparse+render vs sed 's/$/ HOLD/': {sed_ns/pr:.2f}x sed's throughput (target >= 2.5x)")
    print(f"parse+render vs maintalias-style sed: {maint_ns/pr:.2f}x")
PY
