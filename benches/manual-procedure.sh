#!/usr/bin/env bash
# The seed's manual procedure (procedure.md §1, with the published maintalias-style sed), scripted
# as an admin would run it, one user after the other, on a mailmig sandbox. It is the REFERENCE
# for downtime per user in docs/benchmarks.md — not something to run on a real server: it has
# every flaw procedure.md §2 lists (substring sed, no confirmation that Dovecot saw an edit, no
# catch-up, `postsuper -r ALL`).
#
#   manual-procedure.sh SANDBOX_ENV USER...
#
# Prints one line per user: USER<TAB>seconds from the hold to the release.
set -euo pipefail
env_file=$1; shift
# shellcheck disable=SC1090
source "$env_file"
D=(doveadm -c "$DOVECOT_CONFIG")
now() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
for U in "$@"; do
  t0=$(now)
  # 1. Hold: maintalias.sh builds the lines with one sed over the virtual map.
  { echo "$U HOLD Planned maintenance"
    sed -n "s/^\([^[:space:]]*\)[[:space:]].*$U.*/\1 HOLD Planned maintenance/p" "$VIRTUAL_MAP"
  } > "$ACCESS_MAP"
  postmap -c "$POSTFIX_CONFIG" "hash:$ACCESS_MAP"
  # 2. Lock out and kick.
  sed -i "s|^\($U:.*\)\$|\1allow_nets=|" "$PASSWD_FILE"
  "${D[@]}" kick "$U" >/dev/null 2>&1 || true
  # 3. Convert.
  "${D[@]}" backup -u "$U" 'mdbox:~/mdbox'
  # 4. Switch, clear the holds, unlock.
  sed -i "s|^\($U:.*\)allow_nets=\$|\1userdb_mail=mdbox:~/mdbox|" "$PASSWD_FILE"
  : > "$ACCESS_MAP"
  postmap -c "$POSTFIX_CONFIG" "hash:$ACCESS_MAP"
  # 5. Release.
  postsuper -c "$POSTFIX_CONFIG" -r ALL 2>/dev/null
  postqueue -c "$POSTFIX_CONFIG" -f
  t1=$(now)
  us=$((t1 - t0))
  printf '%s\t%d.%06d\n' "$U" $((us / 1000000)) $((us % 1000000))
done
