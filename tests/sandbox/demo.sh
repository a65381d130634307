#!/usr/bin/env bash
# The mailmig demo, from a fresh machine (as root):
#   1. installs Postfix + Dovecot from Debian's packages when missing, builds mailmig;
#   2. inside a private network namespace (only loopback), stands up a throwaway Postfix +
#      Dovecot pair under a temporary directory and gives alice mail in two folders, with flags;
#   3. shows what mailmig reads (aliases reaching alice) and the migration plan;
#   4. migrates alice from maildir to mdbox with `mailmig migrate` while mail keeps arriving over
#      SMTP (to alice, to her aliases, to a shared alias), then counts every message sent during
#      the run in her new mdbox and prints the verification summary;
#   5. stops the daemons and removes the directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

if [[ ${1:-} != --inside ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "demo.sh: run as root (it installs Debian packages and uses a network namespace)" >&2
    exit 77
  fi
  bash tests/sandbox/sandbox.sh install
  cargo build --release --locked --quiet -p mailmig-cli
  exec bash tests/sandbox/sandbox.sh netns bash "$0" --inside
fi

MAILMIG=$ROOT/target/release/mailmig
work=$(mktemp -d /tmp/mailmig-demo.XXXXXX)
chmod 0755 "$work"   # the daemons run as postfix, dovecot and vmail
DIR=$work/sb
sender_pid=
cleanup() {
  [[ -n $sender_pid ]] && kill "$sender_pid" 2>/dev/null || true
  bash "$ROOT/tests/sandbox/sandbox.sh" down "$DIR" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || printf '[exit %s]\n' "$?"; }

echo "== starting a sandbox Postfix + Dovecot under $DIR (private network namespace)"
env_file=$(bash tests/sandbox/sandbox.sh up "$DIR" | tail -n 1)
# shellcheck disable=SC1090
source "$env_file"
A=alice@example.test
D=(doveadm -c "$DOVECOT_CONFIG")
bash tests/sandbox/sandbox.sh seed "$DIR" alice 60 >/dev/null
"${D[@]}" mailbox create -u "$A" Projects
"${D[@]}" move -u "$A" Projects mailbox INBOX uid 1:15
"${D[@]}" flags add -u "$A" '\Seen \Flagged $Label1' mailbox INBOX uid 16:30
echo "alice@example.test: 60 messages delivered over SMTP -> LMTP into maildir; 15 moved to Projects, 15 flagged"
show "${D[@]}" -f tab mailbox status -u "$A" 'messages uidvalidity uidnext' '*'

M=("$MAILMIG" --postfix-config "$POSTFIX_CONFIG" --dovecot-config "$DOVECOT_CONFIG" --state-dir "$work/state")
show "${M[@]}" aliases "$A"
show "${M[@]}" plan "$A" --to 'mdbox:~/mdbox'

echo
echo "== mail keeps arriving: one message every 0.1 s to alice@, al@, team@ (alice + bob), staff@ (-> team@)"
sent=$work/sent
: > "$sent"
(
  n=0
  while :; do
    for to in alice@example.test al@example.test team@example.test staff@example.test; do
      n=$((n + 1))
      swaks --server 127.0.0.1 --port "$SMTP_PORT" --from sender@example.org --to "$to" \
        --header "X-Mailmig-Test: demo-$n" --silent 2 >/dev/null 2>&1 && echo "demo-$n" >> "$sent"
      sleep 0.1
    done
  done
) &
sender_pid=$!
sleep 1

echo
echo "== migrating alice to mdbox while that mail arrives"
show "${M[@]}" migrate "$A" --to 'mdbox:~/mdbox'
sleep 1
kill "$sender_pid" 2>/dev/null || true
wait "$sender_pid" 2>/dev/null || true
sender_pid=
for _ in $(seq 60); do [[ -z $(postqueue -c "$POSTFIX_CONFIG" -j) ]] && break; sleep 0.5; postqueue -c "$POSTFIX_CONFIG" -f; done

echo
echo "== checking: every message sent during the run is in alice's mdbox exactly once"
show "${D[@]}" user -f mail "$A"
show "${D[@]}" -f tab mailbox status -u "$A" 'messages uidvalidity uidnext' '*'
"${D[@]}" -f tab fetch -u "$A" 'hdr.x-mailmig-test' ALL | tail -n +2 | grep . | sort > "$work/got" || true
sort "$sent" > "$work/want"
missing=$(comm -23 "$work/want" "$work/got" | wc -l)
dups=$(uniq -d "$work/got" | wc -l)
echo "sent during the migration: $(wc -l < "$work/want"); missing from mdbox: $missing; duplicated: $dups"
echo "flags kept: $("${D[@]}" search -u "$A" mailbox INBOX FLAGGED | wc -l) flagged messages in INBOX"
show "${M[@]}" status
echo "queue: $(postqueue -c "$POSTFIX_CONFIG" -j | wc -l) messages; access map: $(grep -c . "$ACCESS_MAP" || true) lines"
[[ $missing -eq 0 && $dups -eq 0 ]]

echo
echo "== stopping the sandbox"
