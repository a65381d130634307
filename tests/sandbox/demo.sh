#!/usr/bin/env bash
# The mailmig demo, from a fresh machine (as root):
#   1. installs Postfix + Dovecot from Debian's packages when missing, builds mailmig;
#   2. inside a private network namespace (only loopback), stands up a throwaway Postfix +
#      Dovecot pair under a temporary directory and delivers mail to alice over SMTP/LMTP;
#   3. shows what mailmig reads from the sandbox's real maps: `map check`, `map dump`,
#      `aliases` (checked against mail actually delivered), and what it catches that postmap
#      accepts silently;
#   4. stops the daemons and removes the directory.
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
cleanup() { bash "$ROOT/tests/sandbox/sandbox.sh" down "$DIR" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@" || printf '[exit %s]\n' "$?"; }

echo "== starting a sandbox Postfix + Dovecot under $DIR (private network namespace)"
env_file=$(bash tests/sandbox/sandbox.sh up "$DIR" | tail -n 1)
# shellcheck disable=SC1090
source "$env_file"
bash tests/sandbox/sandbox.sh seed "$DIR" alice 5 >/dev/null
echo "delivered 5 messages to alice@example.test over SMTP -> LMTP"

show cat "$VIRTUAL_MAP"
show "$MAILMIG" --postfix-config "$POSTFIX_CONFIG" map check --kind virtual "$VIRTUAL_MAP"
echo "(exit 0: nothing postmap would skip, no bad values)"
show "$MAILMIG" --postfix-config "$POSTFIX_CONFIG" map dump "$VIRTUAL_MAP"
show "$MAILMIG" --postfix-config "$POSTFIX_CONFIG" map get "$VIRTUAL_MAP" STAFF@Example.TEST
show "$MAILMIG" --postfix-config "$POSTFIX_CONFIG" aliases alice@example.test

echo
echo "== checking that against the live daemons: one message to each address"
for a in $("$MAILMIG" --postfix-config "$POSTFIX_CONFIG" aliases alice@example.test | cut -f1); do
  bash tests/sandbox/sandbox.sh seed "$DIR" "$a" 1 >/dev/null
done
doveadm -c "$DOVECOT_CONFIG" mailbox status -u alice@example.test messages INBOX

echo
echo "== holding alice's mail at Postfix: one exact access line per address that reaches her"
M=("$MAILMIG" --postfix-config "$POSTFIX_CONFIG" --dovecot-config "$DOVECOT_CONFIG" --state-dir "$work/state")
show "${M[@]}" hold check
show "${M[@]}" hold add alice@example.test --reason "Planned maintenance"
show cat "$ACCESS_MAP"
sleep 1.1   # smtpd notices a rebuilt table by its mtime second
bash tests/sandbox/sandbox.sh seed "$DIR" staff@example.test 1 >/dev/null 2>&1 || true
show "${M[@]}" queue list --user alice@example.test
show "${M[@]}" login disable alice@example.test
show doveadm -c "$DOVECOT_CONFIG" auth lookup alice@example.test
show "${M[@]}" login enable alice@example.test
show "${M[@]}" hold remove alice@example.test
"${M[@]}" queue list --user alice@example.test | cut -f1 > "$work/ids"
show "${M[@]}" queue release --user alice@example.test --ids "$work/ids"
sleep 1
doveadm -c "$DOVECOT_CONFIG" mailbox status -u alice@example.test messages INBOX

echo
echo "== what the published sed script would have written for team@ (a shared alias):"
printf 'team@example.test alice@example.test, bob@example.test HOLD Planned maintenance\n' > "$ACCESS_MAP"
show postmap -c "$POSTFIX_CONFIG" "hash:$ACCESS_MAP"
echo "(postmap exit 0, no warning: smtpd would answer 451 4.3.5 for team@)"
show "$MAILMIG" --postfix-config "$POSTFIX_CONFIG" map check --kind access "$ACCESS_MAP"

echo
echo "== stopping the sandbox"
