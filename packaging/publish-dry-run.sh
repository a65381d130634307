#!/usr/bin/env bash
# `cargo publish --dry-run` of mailmig-core and mailmig-cli together: both packaged, and
# mailmig-cli built against the *packaged* mailmig-core (cargo serves it from a temporary local
# registry, since it is not on crates.io). Run by tests/run-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Cargo unpacks that temporary registry's crates under CARGO_HOME/registry/src/<hash of its
# path>/ and reuses an unpacked mailmig-core-VERSION there on the next run, even when its source
# changed since: mailmig-cli would then be verified against a stale library (seen: the second
# dry run after a change to mailmig-core failed). Remove those copies (crates.io's own
# directories are left alone).
registry_src=${CARGO_HOME:-$HOME/.cargo}/registry/src
if [[ -d $registry_src ]]; then
  find "$registry_src" -mindepth 2 -maxdepth 2 -type d \
    \( -name 'mailmig-core-*' -o -name 'mailmig-cli-*' \) \
    -not -path "$registry_src/index.crates.io-*/*" -exec rm -rf {} +
fi

# Cargo also takes a registry crate's build as fresh whatever its source: drop the builds of
# the packaged mailmig-core (those whose dep-info names a registry path) so it is compiled anew.
target_dir=${CARGO_TARGET_DIR:-target}
for dep_info in "$target_dir"/debug/deps/mailmig_core-*.d; do
  [[ -f $dep_info ]] && grep -q '/registry/src/' "$dep_info" || continue
  hash=${dep_info##*/mailmig_core-}
  hash=${hash%.d}
  rm -rf "$target_dir/debug/.fingerprint/mailmig-core-$hash" "$target_dir"/debug/deps/*mailmig_core-"$hash".*
done

# A clean checkout (CI) is packaged as it is; uncommitted local changes are allowed here only.
flags=()
if [[ -n $(git status --porcelain -- mailmig-core mailmig-cli Cargo.toml Cargo.lock 2>/dev/null) ]]; then
  flags=(--allow-dirty)
fi
cargo publish --dry-run --locked "${flags[@]}" -p mailmig-core -p mailmig-cli
