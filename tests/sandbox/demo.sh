#!/usr/bin/env bash
# The mailmig demo, from a fresh machine (as root):
#
#   bash tests/sandbox/demo.sh                   # Debian 12: Postfix 3.7 + Dovecot 2.3 (fastest)
#   bash tests/sandbox/demo.sh --stack debian13  # Debian 13: Postfix 3.10 + Dovecot 2.4 (chroot)
#
#   1. installs Postfix + Dovecot from Debian's packages when missing (for debian13 also builds
#      the Debian 13 root once, ~1 min), builds mailmig;
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

STACK=debian12
case ${1:-} in
  --stack) STACK=${2:?--stack needs debian12 or debian13}; shift 2 ;;
  --stack=*) STACK=${1#*=}; shift ;;
esac
case $STACK in debian12|debian13) ;; *) echo "demo.sh: unknown stack '$STACK' (debian12 or debian13)" >&2; exit 2 ;; esac

if [[ ${1:-} != --inside ]]; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "demo.sh: run as root (it installs Debian packages and uses a network namespace)" >&2
    exit 77
  fi
  bash tests/sandbox/sandbox.sh install --stack "$STACK"
  cargo build --release --locked --quiet -p mailmig-cli
  exec bash tests/sandbox/sandbox.sh netns bash "$0" --stack "$STACK" --inside
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
env_file=$(bash tests/sandbox/sandbox.sh up "$DIR" --stack "$STACK" | tail -n 1)
# shellcheck disable=SC1090
source "$env_file"
# the stack's own programs (chrooted into the Debian 13 root for debian13), mailmig among them
X=(bash "$ROOT/tests/sandbox/sandbox.sh" exec "$DIR")
if [[ $STACK == debian13 ]]; then
  mkdir -p "$DIR/bin" && cp "$MAILMIG" "$DIR/bin/mailmig" && MAILMIG=$DIR/bin/mailmig
fi
echo "stack $STACK: $("${X[@]}" postconf -c "$POSTFIX_CONFIG" -h mail_version | sed 's/^/Postfix /'), Dovecot $("${X[@]}" dovecot --version)"
A=alice@example.test
D=("${X[@]}" doveadm -c "$DOVECOT_CONFIG")
bash tests/sandbox/sandbox.sh seed "$DIR" alice 60 >/dev/null
"${D[@]}" mailbox create -u "$A" Projects
"${D[@]}" move -u "$A" Projects mailbox INBOX uid 1:15
"${D[@]}" flags add -u "$A" '\Seen \Flagged $Label1' mailbox INBOX uid 16:30
echo "alice@example.test: 60 messages delivered over SMTP -> LMTP into maildir; 15 moved to Projects, 15 flagged"
show "${D[@]}" -f tab mailbox status -u "$A" 'messages uidvalidity uidnext' '*'

M=("${X[@]}" "$MAILMIG" --postfix-config "$POSTFIX_CONFIG" --dovecot-config "$DOVECOT_CONFIG" --state-dir "$work/state")
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
for _ in $(seq 60); do [[ -z $("${X[@]}" postqueue -c "$POSTFIX_CONFIG" -j) ]] && break; sleep 0.5; "${X[@]}" postqueue -c "$POSTFIX_CONFIG" -f; done

echo
echo "== checking: every message sent during the run is in alice's mdbox exactly once"
show "${D[@]}" user "$A"
show "${D[@]}" -f tab mailbox status -u "$A" 'messages uidvalidity uidnext' '*'
"${D[@]}" -f tab fetch -u "$A" 'hdr.x-mailmig-test' ALL | tail -n +2 | grep . | sort > "$work/got" || true
sort "$sent" > "$work/want"
missing=$(comm -23 "$work/want" "$work/got" | wc -l)
dups=$(uniq -d "$work/got" | wc -l)
echo "sent during the migration: $(wc -l < "$work/want"); missing from mdbox: $missing; duplicated: $dups"
echo "flags kept: $("${D[@]}" search -u "$A" mailbox INBOX FLAGGED | wc -l) flagged messages in INBOX"
show "${M[@]}" status
echo "queue: $("${X[@]}" postqueue -c "$POSTFIX_CONFIG" -j | wc -l) messages; access map: $(grep -c . "$ACCESS_MAP" || true) lines"
[[ $missing -eq 0 && $dups -eq 0 ]]

echo
echo "== stopping the sandbox"
