#!/usr/bin/env bash
# sandbox.sh - throwaway, self-contained Postfix + Dovecot instances for mailmig tests.
#
#   sandbox.sh install [--stack debian12|debian13|all]
#   sandbox.sh up DIR [--stack debian12|debian13] [--userdb passwd-file|sql] [--smtp-port N] [--imap-port N]
#   sandbox.sh down DIR
#   sandbox.sh seed DIR USER COUNT [--first N]
#   sandbox.sh exec DIR CMD [ARG...]
#   sandbox.sh netns CMD [ARG...]
#
# Two stacks, both from Debian's packages:
#   debian12  Postfix 3.7 + Dovecot 2.3, the host's own packages (apt);
#   debian13  Postfix 3.10 + Dovecot 2.4, in a Debian 13 (trixie) root built with mmdebstrap
#             and cached in $TRIXIE_ROOT; the instance directory is bind-mounted into that
#             root at the same path, and every daemon and tool runs chrooted there.
#
# Everything an instance owns lives under DIR (configs, queue, data, logs, sockets,
# pid files, mail).  Nothing under /etc/postfix, /etc/dovecot or /var/spool/postfix is
# read for configuration or written.  See README.md next to this file.
#
# Exit codes: 0 ok, 1 failure, 2 usage error, 77 environment cannot run the sandbox
# (not root, packages/vmail user missing, no network namespaces) - "skip" for tests.
set -Eeuo pipefail
umask 022
export LC_ALL=C
export PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/sbin:/sbin"

PROG=${0##*/}
readonly PROG
readonly DOMAIN=example.test
readonly USERS=(alice bob carol)
readonly PKGS=(postfix dovecot-core dovecot-imapd dovecot-lmtpd dovecot-pop3d dovecot-sqlite sqlite3 swaks)
readonly TOOLS=(postfix postmap postqueue dovecot doveadm swaks)
readonly DEFAULT_SMTP_PORT=2525 DEFAULT_IMAP_PORT=10143
# the Debian 13 root: built once per machine, rebuilt when missing or its package list changed
readonly TRIXIE_ROOT=${MAILMIG_TRIXIE_ROOT:-/var/cache/mailmig-sandbox/trixie}
readonly TRIXIE_MIRROR=${MAILMIG_TRIXIE_MIRROR:-http://deb.debian.org/debian}
readonly TRIXIE_PKGS=postfix,dovecot-core,dovecot-imapd,dovecot-lmtpd,dovecot-pop3d,dovecot-sqlite,procps
readonly TRIXIE_MARKER=.mailmig-sandbox-built
# bounded waits (seconds); overridable for slow machines
readonly UP_TIMEOUT=${SANDBOX_UP_TIMEOUT:-15}
readonly DOWN_TIMEOUT=${SANDBOX_DOWN_TIMEOUT:-15}
readonly SEED_TIMEOUT=${SANDBOX_SEED_TIMEOUT:-30}
# AF_UNIX sun_path is 108 bytes incl. NUL; Dovecot's longest socket under base_dir
# is "token-login/imap-urlauth" (24) - keep a margin.
readonly MAX_DIR_LEN=70

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage_err() { printf '%s: usage error: %s\n' "$PROG" "$*" >&2; usage >&2; exit 2; }
skip() { printf '%s: cannot run here: %s\n' "$PROG" "$*" >&2; exit 77; }
need_root() { [[ $(id -u) -eq 0 ]] || skip "must run as root (current uid $(id -u))"; }

usage() {
  cat <<EOF
usage: $PROG install [--stack debian12|debian13|all]   (default all)
       $PROG up DIR [--stack debian12|debian13] [--userdb passwd-file|sql] [--smtp-port N] [--imap-port N]
                                       (defaults debian12, passwd-file, $DEFAULT_SMTP_PORT / $DEFAULT_IMAP_PORT)
       $PROG down DIR
       $PROG seed DIR USER COUNT [--first N]
       $PROG exec DIR CMD [ARG...]     (CMD on DIR's stack: chrooted for debian13)
       $PROG netns CMD [ARG...]
EOF
}

# ------------------------------------------------------------------ stacks
# STACK is debian12 (the host's packages) or debian13 (chrooted into TRIXIE_ROOT); SROOT is
# the root the stack's programs see ("" for the host).
STACK=debian12 SROOT=""
set_stack() {
  case $1 in
    debian12) STACK=debian12 SROOT="" ;;
    debian13) STACK=debian13 SROOT=$TRIXIE_ROOT ;;
    *) usage_err "unknown stack '$1' (debian12 or debian13)" ;;
  esac
}
# the stack an instance was started on (recorded in DIR/stack by up)
load_stack() {
  local s=debian12
  if [[ -r $1/stack ]]; then read -r s _ < "$1/stack" || true; fi
  set_stack "${s:-debian12}"
}
# run a program of the stack: chrooted into the Debian 13 root, or the host's own
on_stack() {
  if [[ -n $SROOT ]]; then chroot "$SROOT" "$@"; else "$@"; fi
}
stack_uid() { on_stack id -u "$1"; }
stack_gid() { on_stack id -g "$1"; }

# ------------------------------------------------------------------ helpers
now_us() { local t=${EPOCHREALTIME/[.,]/}; printf '%s' "$t"; }

# wait_until TIMEOUT_S CMD... : poll CMD every 50 ms until it succeeds or time runs out
wait_until() {
  local deadline
  deadline=$(( $(now_us) + $1 * 1000000 )); shift
  until "$@"; do
    (( $(now_us) < deadline )) || return 1
    sleep 0.05
  done
}

# pid_alive PID : process exists and is not a zombie (a stopped daemon can linger
# as a zombie until init reaps it)
pid_alive() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }              # field 3 (state) follows "pid (comm) "
  [[ ${stat%% *} != Z ]]
}

# owned_by PID DIR : PID is alive and its cwd is DIR (or below)
owned_by() {
  local cwd
  pid_alive "$1" || return 1
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
  [[ $cwd == "$2" || $cwd == "$2"/* ]]
}

read_pid() { if [[ -r $1 ]]; then tr -dc '0-9' < "$1" 2>/dev/null || true; fi; }

# first line the server sends on 127.0.0.1:PORT (empty + rc 1 if nothing listens)
greeting() {
  ( exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 3 line <&3 || exit 1
    printf '%s\n' "${line%$'\r'}" ) 2>/dev/null
}
port_in_use() { ( exec 3<>"/dev/tcp/127.0.0.1/$1" ) 2>/dev/null; }
greets_with() { local g; g=$(greeting "$1") && [[ $g == *"$2"* ]]; }

# phase timing on stderr when SANDBOX_DEBUG=1
T_START=$(now_us)
dbg() { [[ ${SANDBOX_DEBUG:-0} == 1 ]] || return 0; printf '%s: +%dms %s\n' "$PROG" $(( ($(now_us) - T_START) / 1000 )) "$*" >&2; }

abs_path() { realpath -m -- "$1"; }

instance_id() {          # stable, unique per DIR
  local h
  h=$(printf '%s' "$1" | sha256sum)
  printf 'sbx-%s' "${h:0:12}"
}

# pids of Postfix/Dovecot processes that belong to the instance under DIR:
# their cwd is inside DIR (Postfix chdirs to queue_directory, Dovecot to base_dir,
# its login chroot or the mail home).  Zombies are skipped.  A chrooted (debian13)
# process shows its cwd and executable below the root: $SROOT$DIR, $SROOT/usr/...
instance_pids() {
  local dir=$SROOT$1 link pid exe
  # one find over /proc/PID/cwd instead of a readlink per process
  while IFS= read -r link; do
    pid=${link#/proc/}; pid=${pid%/cwd}
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
    [[ -z $SROOT ]] || exe=${exe#"$SROOT"}
    case $exe in
      /usr/lib/postfix/*|/usr/sbin/post*|/usr/sbin/dovecot|/usr/lib/dovecot/*|/usr/bin/doveadm) ;;
      *) continue ;;
    esac
    if pid_alive "$pid"; then printf '%s\n' "$pid"; fi
  done < <(find /proc -mindepth 2 -maxdepth 2 -name cwd \( -lname "$dir" -o -lname "$dir/*" \) 2>/dev/null)
  return 0
}
no_instance_pids() { [[ -z $(instance_pids "$1") ]]; }

have_prereqs() {
  local t
  if [[ $STACK == debian13 ]]; then
    trixie_ready || return 1
    on_stack sh -c 'for t in postfix postmap postqueue dovecot doveadm; do command -v "$t" >/dev/null || exit 1; done' \
      && command -v swaks >/dev/null 2>&1
    return
  fi
  for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null 2>&1 || return 1; done
  id -u vmail >/dev/null 2>&1 && id -u postfix >/dev/null 2>&1 && id -u dovecot >/dev/null 2>&1
}

# the Debian 13 root is complete and was built with today's package list
trixie_ready() {
  [[ -f $TRIXIE_ROOT/$TRIXIE_MARKER ]] || return 1
  [[ $(head -n 1 "$TRIXIE_ROOT/$TRIXIE_MARKER") == "packages $TRIXIE_PKGS" ]] || return 1
  chroot "$TRIXIE_ROOT" dpkg-query -W postfix dovecot-core dovecot-imapd dovecot-lmtpd >/dev/null 2>&1 \
    && chroot "$TRIXIE_ROOT" id -u vmail >/dev/null 2>&1
}

# something is mounted at or below PATH (in this mount namespace)
mounted_below() {
  awk -v p="$1" '$5 == p || index($5, p "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# ------------------------------------------------------------------ install
cmd_install() {
  local which=all
  while (( $# )); do
    case $1 in
      --stack) (( $# > 1 )) || usage_err "--stack needs a value"; which=$2; shift 2 ;;
      --stack=*) which=${1#*=}; shift ;;
      *) usage_err "install takes only --stack" ;;
    esac
  done
  case $which in debian12|debian13|all) ;; *) usage_err "unknown stack '$which' (debian12, debian13 or all)" ;; esac
  need_root
  # the host's packages serve debian12, and the test harness's swaks and python for both
  install_debian12
  if [[ $which != debian12 ]]; then install_debian13; fi
}

install_debian12() {
  local t missing=()
  for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  # POP3 (the configuration checks read pop3 settings; doveconf wants the protocol installed)
  [[ -x /usr/lib/dovecot/pop3 ]] || missing+=(dovecot-pop3d)
  # SQL users (the PostfixAdmin-style variant): Dovecot's SQLite driver, and the CLI to fill it
  [[ -e /usr/lib/dovecot/modules/libdriver_sqlite.so ]] || missing+=(dovecot-sqlite)
  command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
  if (( ${#missing[@]} )); then
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v debconf-set-selections >/dev/null 2>&1; then
      skip "missing ${missing[*]} and this is not a Debian-like system (no apt-get/debconf)"
    fi
    say "installing ${PKGS[*]} (missing: ${missing[*]})"
    local made_policy=0 rc=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
      # keep the package scripts from starting system-wide daemons
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod 0755 /usr/sbin/policy-rc.d
      made_policy=1
    fi
    {
      echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections &&
      DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}"
    } </dev/null 1>&2 || rc=$?
    if (( made_policy )); then rm -f /usr/sbin/policy-rc.d; fi
    (( rc == 0 )) || die "package installation failed (rc $rc)"
    for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null 2>&1 || die "$t still missing after install"; done
  fi
  if ! id -u vmail >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin vmail || die "useradd vmail failed"
    say "created system user vmail ($(id -u vmail):$(id -g vmail))"
  fi
  say "prerequisites present (vmail $(id -u vmail):$(id -g vmail))"
}

# The Debian 13 root: mmdebstrap --variant=apt from Debian's trixie packages (about 200 MB),
# built into ROOT.new and renamed when complete; kept between runs.
install_debian13() {
  local lock_dir=${TRIXIE_ROOT%/*}
  mkdir -p "$lock_dir"
  exec 9>"$lock_dir/.build.lock"
  flock 9
  if trixie_ready; then
    say "Debian 13 root present: $TRIXIE_ROOT ($(sed -n 2p "$TRIXIE_ROOT/$TRIXIE_MARKER"))"
    exec 9>&-
    return 0
  fi
  if ! command -v mmdebstrap >/dev/null 2>&1; then
    say "installing mmdebstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap </dev/null 1>&2 \
      || die "cannot install mmdebstrap"
  fi
  local path
  for path in "$TRIXIE_ROOT" "$TRIXIE_ROOT.new"; do
    if mounted_below "$path"; then die "$path has mounts below it (an instance still up?): run 'down' first"; fi
    rm -rf --one-file-system "$path"
  done
  say "building the Debian 13 root $TRIXIE_ROOT from $TRIXIE_MIRROR (packages $TRIXIE_PKGS)"
  local t0=$EPOCHSECONDS
  mmdebstrap --variant=apt --mode=root --include="$TRIXIE_PKGS" \
    --essential-hook='echo "postfix postfix/main_mailer_type select No configuration" | chroot "$1" debconf-set-selections' \
    --customize-hook='chroot "$1" useradd --system --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin vmail' \
    trixie "$TRIXIE_ROOT.new" "$TRIXIE_MIRROR" </dev/null 1>&2 || die "mmdebstrap failed"
  {
    printf 'packages %s\n' "$TRIXIE_PKGS"
    printf 'built %s in %ss: %s\n' "$(date -u +%FT%TZ)" "$(( EPOCHSECONDS - t0 ))" \
      "$(chroot "$TRIXIE_ROOT.new" dpkg-query -W -f '${Package}=${Version} ' postfix dovecot-core)"
  } > "$TRIXIE_ROOT.new/$TRIXIE_MARKER"
  mv "$TRIXIE_ROOT.new" "$TRIXIE_ROOT"
  trixie_ready || die "the Debian 13 root at $TRIXIE_ROOT is incomplete after the build"
  say "built $TRIXIE_ROOT in $(( EPOCHSECONDS - t0 )) s ($(du -sh "$TRIXIE_ROOT" | cut -f1))"
  exec 9>&-
}

# ------------------------------------------------------------------ config writers
write_postfix() {
  local pconf=$DIR/postfix
  cat > "$pconf/main.cf" <<EOF
# mailmig sandbox Postfix instance $INST - everything lives under $DIR
compatibility_level = 3.6
queue_directory = $DIR/spool
data_directory = $DIR/lib
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.$DOMAIN
mydomain = $DOMAIN
myorigin = \$myhostname
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# no syslog: log through postlogd to a file (the prefix list must allow the path)
maillog_file = $DIR/log/postfix.log
maillog_file_prefixes = $DIR
# no DNS and no outbound delivery, ever
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
default_transport = error:outbound mail disabled in the mailmig sandbox
relay_transport = error:relaying disabled in the mailmig sandbox
local_transport = error:local delivery disabled in the mailmig sandbox
alias_maps =
alias_database =
local_recipient_maps =
biff = no
smtpd_banner = \$myhostname ESMTP mailmig-sandbox $INST
# virtual mailboxes, delivered by this instance's Dovecot over LMTP
virtual_mailbox_domains = $DOMAIN
virtual_mailbox_maps = hash:$pconf/vmailbox
virtual_alias_maps = hash:$pconf/virtual
virtual_transport = lmtp:unix:$DIR/dovecot/run/lmtp
# maintenance HOLD hook (starts empty)
smtpd_recipient_restrictions = check_recipient_access hash:$pconf/recipient_maintenance, permit_mynetworks, reject_unauth_destination
EOF
  # nothing is chrooted, so absolute socket paths work everywhere
  cat > "$pconf/master.cf" <<EOF
# service              type  private unpriv chroot wakeup maxproc command
127.0.0.1:$SMTP_PORT   inet  n       -      n      -      -       smtpd
pickup                 unix  n       -      n      60     1       pickup
cleanup                unix  n       -      n      -      0       cleanup
qmgr                   unix  n       -      n      300    1       qmgr
rewrite                unix  -       -      n      -      -       trivial-rewrite
bounce                 unix  -       -      n      -      0       bounce
defer                  unix  -       -      n      -      0       bounce
trace                  unix  -       -      n      -      0       bounce
verify                 unix  -       -      n      -      1       verify
flush                  unix  n       -      n      1000?  0       flush
proxymap               unix  -       -      n      -      -       proxymap
proxywrite             unix  -       -      n      -      1       proxymap
showq                  unix  n       -      n      -      -       showq
error                  unix  -       -      n      -      -       error
retry                  unix  -       -      n      -      -       error
discard                unix  -       -      n      -      -       discard
lmtp                   unix  -       -      n      -      -       lmtp
anvil                  unix  -       -      n      -      1       anvil
scache                 unix  -       -      n      -      1       scache
postlog                unix-dgram n  -      n      -      1       postlogd
EOF
  # Postfix's load_file() dozes in 300 ms steps until main.cf is ~2 s old (it
  # guards against reading a file that is still being written), so every Postfix
  # command in the next 2 s would stall.  Nothing runs yet: backdate both files.
  touch -d "@$(( EPOCHSECONDS - 60 ))" "$pconf/main.cf" "$pconf/master.cf"
  local u
  {
    echo "# virtual mailboxes of the mailmig sandbox (value unused: delivery is LMTP)"
    for u in "${USERS[@]}"; do printf '%-24s %s/%s/\n' "$u@$DOMAIN" "$DOMAIN" "$u"; done
  } > "$pconf/vmailbox"
  cat > "$pconf/virtual" <<EOF
# virtual_alias_maps for $DOMAIN (mailmig sandbox seed data)
# alias                      destination(s)
al@$DOMAIN              alice@$DOMAIN
alice.smith@$DOMAIN     alice@$DOMAIN
team@$DOMAIN            alice@$DOMAIN, bob@$DOMAIN
# nested: staff -> team -> alice, bob
staff@$DOMAIN           team@$DOMAIN
# one logical line over two physical lines, with a comment in between
ops@$DOMAIN             bob@$DOMAIN,
# carol covers ops on weekends
    carol@$DOMAIN
EOF
  : > "$pconf/recipient_maintenance"   # the .db must exist before smtpd needs it
  on_stack postmap -c "$pconf" "hash:$pconf/vmailbox" "hash:$pconf/virtual" "hash:$pconf/recipient_maintenance" \
    </dev/null >"$DIR/log/postmap.out" 2>&1 || { cat "$DIR/log/postmap.out" >&2; die "postmap failed"; }
}

# The SQL variant: the users in SQLite, in PostfixAdmin's `mailbox` table (its columns; the
# password in the sandbox's {PLAIN} scheme, maildir relative to the mail root as PostfixAdmin
# writes it), read by Dovecot's sql passdb and userdb (Debian's dovecot-sqlite).
write_sql_users() {
  local db=$1 u
  rm -f "$db"
  {
    cat <<'EOF'
CREATE TABLE mailbox (
  username varchar(255) NOT NULL PRIMARY KEY,
  password varchar(255) NOT NULL,
  name varchar(255) NOT NULL DEFAULT '',
  maildir varchar(255) NOT NULL,
  quota bigint NOT NULL DEFAULT 0,
  local_part varchar(255) NOT NULL,
  domain varchar(255) NOT NULL,
  created datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  modified datetime NOT NULL DEFAULT '2000-01-01 00:00:00',
  active tinyint(1) NOT NULL DEFAULT 1
);
EOF
    for u in "${USERS[@]}"; do
      printf "INSERT INTO mailbox (username, password, name, maildir, local_part, domain) VALUES ('%s@%s', '{PLAIN}%spw', '%s', '%s/%s/', '%s', '%s');\n" \
        "$u" "$DOMAIN" "$u" "$u" "$DOMAIN" "$u" "$u" "$DOMAIN"
    done
  } | sqlite3 "$db" || die "cannot write $db"
  chmod 0644 "$db"
}

# the sql passdb and userdb over the SQLite file, in the stack's syntax (PostfixAdmin's queries:
# home from maildir, one uid/gid for all, only active users; the global mail location applies)
sql_userdbs() {
  local ddir=$1 home pass user iter
  home="'$DIR/mail/' || rtrim(maildir, '/') AS home, $VUID AS uid, $VGID AS gid"
  if [[ $STACK == debian13 ]]; then
    pass="SELECT username AS user, password FROM mailbox WHERE username = '%{user}' AND active = 1"
    user="SELECT $home FROM mailbox WHERE username = '%{user}' AND active = 1"
    iter="SELECT username AS user FROM mailbox WHERE active = 1"
    printf 'sql_driver = sqlite\nsqlite_path = %s\npassdb sql {\n  query = %s\n}\nuserdb sql {\n  query = %s\n  iterate_query = %s\n}' \
      "$ddir/users.sqlite" "$pass" "$user" "$iter"
  else
    pass="SELECT username AS user, password FROM mailbox WHERE username = '%u' AND active = 1"
    user="SELECT $home FROM mailbox WHERE username = '%u' AND active = 1"
    iter="SELECT username AS user FROM mailbox WHERE active = 1"
    printf 'driver = sqlite\nconnect = %s\npassword_query = %s\nuser_query = %s\niterate_query = %s\n' \
      "$ddir/users.sqlite" "$pass" "$user" "$iter" > "$ddir/dovecot-sql.conf.ext"
    printf 'passdb {\n  driver = sql\n  args = %s\n}\nuserdb {\n  driver = sql\n  args = %s\n}' \
      "$ddir/dovecot-sql.conf.ext" "$ddir/dovecot-sql.conf.ext"
  fi
}

write_dovecot() {
  local ddir=$DIR/dovecot u
  {
    for u in "${USERS[@]}"; do
      printf '%s@%s:{PLAIN}%spw:%s:%s::%s/mail/%s/%s::\n' "$u" "$DOMAIN" "$u" "$VUID" "$VGID" "$DIR" "$DOMAIN" "$u"
    done
  } > "$ddir/users"
  # the settings Dovecot 2.3 and 2.4 spell differently (measured on the real binaries)
  local head=() plaintext mail userdbs listen_key
  if [[ $STACK == debian13 ]]; then
    head=("dovecot_config_version = 2.4.0" "dovecot_storage_version = 2.4.0")
    plaintext="auth_allow_cleartext = yes"
    mail=$'mail_driver = maildir\nmail_path = ~/Maildir'
    userdbs=$(printf 'passdb passwd-file {\n  passwd_file_path = %s\n}\nuserdb passwd-file {\n  passwd_file_path = %s\n}' "$ddir/users" "$ddir/users")
    listen_key=listen
  else
    plaintext="disable_plaintext_auth = no"
    mail="mail_location = maildir:~/Maildir"
    userdbs=$(printf 'passdb {\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%%u %s\n}\nuserdb {\n  driver = passwd-file\n  args = username_format=%%u %s\n}' "$ddir/users" "$ddir/users")
    listen_key=address
  fi
  if [[ $USERDB == sql ]]; then
    write_sql_users "$ddir/users.sqlite"
    userdbs=$(sql_userdbs "$ddir")
  fi
  {
    if (( ${#head[@]} )); then printf '%s\n' "${head[@]}"; fi
    cat <<EOF
# mailmig sandbox Dovecot instance $INST ($STACK) - self-contained, nothing from /etc/dovecot
protocols = imap lmtp
listen = 127.0.0.1
base_dir = $ddir/run
state_dir = $ddir/state
instance_name = $INST
log_path = $DIR/log/dovecot.log
hostname = mx.$DOMAIN
login_greeting = mailmig-sandbox $INST ready.
ssl = no
$plaintext
auth_mechanisms = plain login
auth_verbose = yes
auth_failure_delay = 0
# loopback clients are trusted: no anvil auth penalty in tests
login_trusted_networks = 127.0.0.0/8
first_valid_uid = $VUID
last_valid_uid = $VUID
first_valid_gid = $VGID
last_valid_gid = $VGID
$mail
namespace inbox {
  inbox = yes
  separator = /
}
$userdbs
service imap-login {
  inet_listener imap {
    $listen_key = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0660
    user = postfix
    group = postfix
  }
}
protocol lmtp {
  postmaster_address = postmaster@$DOMAIN
}
EOF
  } > "$ddir/dovecot.conf"
  for u in "${USERS[@]}"; do
    install -d -m 0700 -o "$VUID" -g "$VGID" "$DIR/mail/$DOMAIN/$u"
  done
}

write_env() {
  local tmp=$DIR/sandbox.env.tmp
  cat > "$tmp" <<EOF
SANDBOX_DIR=$DIR
POSTFIX_CONFIG=$DIR/postfix
DOVECOT_CONFIG=$DIR/dovecot/dovecot.conf
PASSWD_FILE=$DIR/dovecot/users
USERDB=$USERDB
SQL_DB=$DIR/dovecot/users.sqlite
VIRTUAL_MAP=$DIR/postfix/virtual
ACCESS_MAP=$DIR/postfix/recipient_maintenance
VMAILBOX_MAP=$DIR/postfix/vmailbox
MAIL_ROOT=$DIR/mail
SMTP_PORT=$SMTP_PORT
IMAP_PORT=$IMAP_PORT
VMAIL_UID=$VUID
VMAIL_GID=$VGID
POSTFIX_LOG=$DIR/log/postfix.log
DOVECOT_LOG=$DIR/log/dovecot.log
POSTFIX_QUEUE_DIR=$DIR/spool
LMTP_SOCKET=$DIR/dovecot/run/lmtp
DOVECOT_INSTANCE=$INST
MAIL_DOMAIN=$DOMAIN
STACK=$STACK
STACK_ROOT=$SROOT
EOF
  mv -f "$tmp" "$DIR/sandbox.env"
}

# ------------------------------------------------------------------ stop (down + failed up)
stop_instance() {
  local dir=$1 ppid dpid pids
  [[ -d $dir ]] || return 0
  load_stack "$dir"
  ppid=$(read_pid "$dir/spool/pid/master.pid")
  dpid=$(read_pid "$dir/dovecot/run/master.pid")
  # only trust a pid file if that process really belongs to this instance
  # (cwd = queue_directory resp. base_dir); a stale file may name a reused pid
  owned_by "$ppid" "$SROOT$dir/spool" || ppid=""
  owned_by "$dpid" "$SROOT$dir/dovecot/run" || dpid=""
  # SIGTERM to each master, by the pid in its own pid file - exactly what
  # 'postfix stop' and 'doveadm stop' send, without their waits: postfix-script
  # polls in 1 s steps, and 'doveadm stop' polls kill(pid, 0) for up to 3 s, which
  # a zombie master (not yet reaped by init) keeps succeeding.
  local logf=$dir/log/sandbox.log
  [[ -d $dir/log ]] || logf=/dev/null
  if [[ -n $ppid ]]; then
    printf '%s down: SIGTERM postfix master %s\n' "$(date '+%F %T')" "$ppid" >>"$logf"
    kill -TERM "$ppid" 2>/dev/null || true
  fi
  if [[ -n $dpid ]]; then
    printf '%s down: SIGTERM dovecot master %s\n' "$(date '+%F %T')" "$dpid" >>"$logf"
    kill -TERM "$dpid" 2>/dev/null || true
  fi
  dbg "SIGTERM sent (postfix ${ppid:-none}, dovecot ${dpid:-none})"
  masters_gone() { ! pid_alive "${ppid:-x}" && ! pid_alive "${dpid:-x}"; }
  if ! wait_until "$DOWN_TIMEOUT" masters_gone; then
    say "masters still running after ${DOWN_TIMEOUT}s: SIGKILL"
    if pid_alive "${ppid:-x}"; then kill -KILL "$ppid" 2>/dev/null || true; fi
    if pid_alive "${dpid:-x}"; then kill -KILL "$dpid" 2>/dev/null || true; fi
  fi
  dbg "masters gone"
  # children notice their master is gone and exit; do not leave stragglers behind
  if ! wait_until 5 no_instance_pids "$dir"; then
    pids=$(instance_pids "$dir")
    if [[ -n $pids ]]; then
      say "killing leftover instance processes: $(tr '\n' ' ' <<<"$pids")"
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      wait_until 5 no_instance_pids "$dir" || die "processes of $dir survive SIGKILL: $(instance_pids "$dir" | tr '\n' ' ')"
    fi
  fi
  dbg "all instance processes gone"
  rm -f "$dir/spool/pid/master.pid" "$dir/dovecot/run/master.pid" 2>/dev/null || true
  if [[ -n $SROOT ]]; then unbind_instance "$dir"; fi
}

# ------------------------------------------------------------------ debian13: the instance in the root
# DIR is bind-mounted at the same path inside the root, so a path means the same file to the
# chrooted daemons and tools and to the host (the tests read logs, maps and mail directly).
# proc is mounted in the root while an instance is up.  Mounts made inside `netns` (a private
# mount namespace) vanish with it; `down` removes them in any case.
bind_instance() {
  local dir=$1 made
  exec 8>"$SROOT/run/mailmig-sandbox.lock"
  flock 8
  mkdir -p "$SROOT/run/mailmig-sandbox"
  mountpoint -q "$SROOT/proc" || mount -t proc proc "$SROOT/proc" || die "cannot mount proc in $SROOT"
  : > "$SROOT/run/mailmig-sandbox/$INST.up"
  made=$(mkdir -pv "$SROOT$dir" | sed -n "s/^mkdir: created directory '\(.*\)'$/\1/p")
  printf '%s\n' "$made" > "$dir/stack-mkdirs"
  mount --bind "$dir" "$SROOT$dir" || die "cannot bind-mount $dir into $SROOT"
  exec 8>&-
}

unbind_instance() {
  local dir=$1 inst d
  inst=$(instance_id "$dir")
  exec 8>"$SROOT/run/mailmig-sandbox.lock"
  flock 8
  while mountpoint -q "$SROOT$dir"; do umount "$SROOT$dir" || die "cannot unmount $SROOT$dir"; done
  if [[ -r $dir/stack-mkdirs ]]; then
    # the directories up created inside the root, deepest first
    tac "$dir/stack-mkdirs" | while IFS= read -r d; do
      [[ -n $d && $d == "$SROOT"/* ]] && rmdir -- "$d" 2>/dev/null || true
    done
    rm -f "$dir/stack-mkdirs"
  fi
  rm -f "$SROOT/run/mailmig-sandbox/$inst.up"
  if [[ -z $(ls -A "$SROOT/run/mailmig-sandbox" 2>/dev/null) ]] && mountpoint -q "$SROOT/proc"; then
    umount "$SROOT/proc" 2>/dev/null || true
  fi
  exec 8>&-
}

# ------------------------------------------------------------------ up
UP_STARTED=0
up_cleanup() {
  local rc=$?
  if (( rc != 0 && UP_STARTED )); then
    say "up failed (rc $rc): stopping what was started under $DIR"
    stop_instance "$DIR" || true
  fi
}

fail_with_logs() {
  say "error: $*"
  local f
  for f in "$DIR/log/postfix-start.out" "$DIR/log/postfix.log" "$DIR/log/dovecot-start.out" "$DIR/log/dovecot.log"; do
    [[ -s $f ]] || continue
    printf -- '--- tail %s\n' "$f" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}

parse_port() {  # NAME VALUE
  if ! [[ $2 =~ ^[0-9]+$ ]] || (( 10#$2 < 1 || 10#$2 > 65535 )); then
    usage_err "$1 must be a port number 1-65535, got '$2'"
  fi
  printf '%s' "$((10#$2))"
}

cmd_up() {
  local arg dir="" USERDB=passwd-file
  SMTP_PORT=$DEFAULT_SMTP_PORT IMAP_PORT=$DEFAULT_IMAP_PORT
  while (( $# )); do
    arg=$1; shift
    case $arg in
      --smtp-port) (( $# )) || usage_err "--smtp-port needs a value"; SMTP_PORT=$(parse_port --smtp-port "$1"); shift ;;
      --smtp-port=*) SMTP_PORT=$(parse_port --smtp-port "${arg#*=}") ;;
      --imap-port) (( $# )) || usage_err "--imap-port needs a value"; IMAP_PORT=$(parse_port --imap-port "$1"); shift ;;
      --imap-port=*) IMAP_PORT=$(parse_port --imap-port "${arg#*=}") ;;
      --stack) (( $# )) || usage_err "--stack needs a value"; set_stack "$1"; shift ;;
      --stack=*) set_stack "${arg#*=}" ;;
      --userdb) (( $# )) || usage_err "--userdb needs a value"; USERDB=$1; shift ;;
      --userdb=*) USERDB=${arg#*=} ;;
      -*) usage_err "unknown option '$arg'" ;;
      *) [[ -z $dir ]] || usage_err "more than one DIR given"; dir=$arg ;;
    esac
  done
  [[ -n $dir ]] || usage_err "up needs DIR"
  case $USERDB in passwd-file|sql) ;; *) usage_err "unknown userdb '$USERDB' (passwd-file or sql)" ;; esac
  (( SMTP_PORT != IMAP_PORT )) || usage_err "SMTP and IMAP ports must differ"
  need_root
  have_prereqs || skip "the $STACK stack is not installed (postfix/dovecot/swaks, the vmail user, the Debian 13 root): run '$0 install' first"

  DIR=$(abs_path "$dir")
  [[ $DIR =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "DIR '$DIR' may only contain letters, digits and . _ / + - (it is pasted into config files)"
  [[ $DIR != / ]] || die "DIR must not be /"
  (( ${#DIR} <= MAX_DIR_LEN )) || die "DIR '$DIR' is ${#DIR} chars; keep it <= $MAX_DIR_LEN (unix socket paths under it are limited to 107 bytes)"
  if [[ -e $DIR ]]; then
    [[ -d $DIR ]] || die "$DIR exists and is not a directory"
    [[ -z $(ls -A "$DIR") ]] || die "$DIR is not empty (use a fresh directory, or '$PROG down' + rm -rf it)"
  fi
  port_in_use "$SMTP_PORT" && die "port 127.0.0.1:$SMTP_PORT is already in use"
  port_in_use "$IMAP_PORT" && die "port 127.0.0.1:$IMAP_PORT is already in use"

  INST=$(instance_id "$DIR")
  # the stack's own ids (Debian 13's postfix, dovecot and vmail differ from the host's)
  VUID=$(stack_uid vmail) VGID=$(stack_gid vmail)
  local PUID PGID
  PUID=$(stack_uid postfix) PGID=$(stack_gid postfix)
  mkdir -p "$DIR"
  chmod 0755 "$DIR"       # e.g. mktemp -d makes 0700; postfix/vmail/dovecot must traverse it
  local who
  for who in postfix vmail dovecot; do
    setpriv --reuid="$(stack_uid "$who")" --regid="$(stack_gid "$who")" --clear-groups test -x "$DIR" 2>/dev/null \
      || die "user $who cannot reach $DIR: every parent directory needs o+x (search) permission"
  done
  printf '%s %s\n' "$STACK" "$SROOT" > "$DIR/stack"
  trap up_cleanup EXIT
  UP_STARTED=1
  if [[ -n $SROOT ]]; then bind_instance "$DIR"; fi
  install -d -m 0755 "$DIR/postfix" "$DIR/spool" "$DIR/log" "$DIR/dovecot" "$DIR/dovecot/run" \
    "$DIR/dovecot/state" "$DIR/mail" "$DIR/mail/$DOMAIN"
  install -d -m 0700 -o "$PUID" -g "$PGID" "$DIR/lib"

  dbg "writing postfix config"
  write_postfix
  dbg "writing dovecot config"
  write_dovecot

  dbg "starting dovecot"
  # daemons inherit fds: never let them hold our stdout/stderr (a $(...) caller would hang)
  on_stack dovecot -c "$DIR/dovecot/dovecot.conf" </dev/null >"$DIR/log/dovecot-start.out" 2>&1 \
    || fail_with_logs "dovecot failed to start"
  dbg "starting postfix"
  on_stack postfix -c "$DIR/postfix" start </dev/null >"$DIR/log/postfix-start.out" 2>&1 \
    || fail_with_logs "postfix failed to start"

  dbg "waiting for lmtp socket"
  wait_until "$UP_TIMEOUT" test -S "$DIR/dovecot/run/lmtp" \
    || fail_with_logs "LMTP socket $DIR/dovecot/run/lmtp did not appear within ${UP_TIMEOUT}s"
  dbg "waiting for imap greeting"
  wait_until "$UP_TIMEOUT" greets_with "$IMAP_PORT" "mailmig-sandbox $INST" \
    || fail_with_logs "IMAP on 127.0.0.1:$IMAP_PORT did not greet as $INST within ${UP_TIMEOUT}s"
  dbg "waiting for smtp greeting"
  wait_until "$UP_TIMEOUT" greets_with "$SMTP_PORT" "mailmig-sandbox $INST" \
    || fail_with_logs "SMTP on 127.0.0.1:$SMTP_PORT did not greet as $INST within ${UP_TIMEOUT}s"

  dbg "ready; writing env"
  write_env
  UP_STARTED=0
  trap - EXIT
  say "up: $INST ($STACK) smtp 127.0.0.1:$SMTP_PORT imap 127.0.0.1:$IMAP_PORT dir $DIR"
  printf '%s\n' "$DIR/sandbox.env"
}

# ------------------------------------------------------------------ down
cmd_down() {
  (( $# == 1 )) || usage_err "down needs exactly DIR"
  need_root
  local dir
  dir=$(abs_path "$1")
  [[ -d $dir ]] || { say "down: $dir does not exist (nothing to stop)"; return 0; }
  stop_instance "$dir"
  say "down: $dir stopped"
}

# ------------------------------------------------------------------ seed
SEED_PY=$(cat <<'PY'
import re, smtplib, sys, uuid
from email.utils import formatdate
port, rcpt, count, first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
run = uuid.uuid4().hex[:12]
# local_hostname: never let smtplib resolve our FQDN (DNS)
s = smtplib.SMTP("127.0.0.1", port, local_hostname="seeder.sandbox.test", timeout=30)
s.ehlo()
for n in range(first, first + count):
    msg = (
        "From: Sandbox Seeder <seeder@sandbox.test>\r\n"
        f"To: <{rcpt}>\r\n"
        f"Subject: mailmig sandbox seed {n}\r\n"
        f"Date: {formatdate(localtime=True)}\r\n"
        f"Message-ID: <seed.{run}.{n}@sandbox.test>\r\n"
        f"X-Mailmig-Seq: {n}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"Seed message {n} for {rcpt} (run {run}).\r\n"
    )
    code, resp = s.mail("seeder@sandbox.test")
    if code != 250: sys.exit(f"MAIL FROM refused: {code} {resp!r}")
    code, resp = s.rcpt(rcpt)
    if code not in (250, 251): sys.exit(f"RCPT TO:<{rcpt}> refused: {code} {resp!r}")
    code, resp = s.data(msg.encode("ascii"))
    if code != 250: sys.exit(f"DATA refused: {code} {resp!r}")
    m = re.search(rb"queued as (\w+)", resp)
    print(m.group(1).decode() if m else "?", flush=True)
s.quit()
PY
)

cmd_seed() {
  local pos=() first=1 arg
  while (( $# )); do
    arg=$1; shift
    case $arg in
      --first) (( $# )) || usage_err "--first needs a value"; first=$1; shift ;;
      --first=*) first=${arg#*=} ;;
      *) pos+=("$arg") ;;
    esac
  done
  (( ${#pos[@]} == 3 )) || usage_err "seed needs DIR USER COUNT"
  [[ ${pos[2]} =~ ^[0-9]+$ ]] || usage_err "COUNT must be a non-negative integer"
  [[ $first =~ ^[0-9]+$ ]] || usage_err "--first must be a non-negative integer"
  need_root
  local dir rcpt count=$((10#${pos[2]})) env
  dir=$(abs_path "${pos[0]}")
  rcpt=${pos[1]}
  [[ $rcpt == *@* ]] || rcpt=$rcpt@$DOMAIN
  env=$dir/sandbox.env
  [[ -r $env ]] || die "$env not found: is the sandbox up?"
  # shellcheck source=/dev/null
  . "$env"
  load_stack "$dir"
  (( count > 0 )) || return 0
  local py=python3
  [[ -x /usr/bin/python3 ]] && py=/usr/bin/python3
  local ids
  ids=$("$py" -c "$SEED_PY" "$SMTP_PORT" "$rcpt" "$count" "$((10#$first))") \
    || die "SMTP submission to 127.0.0.1:$SMTP_PORT failed"
  queue_empty() { [[ -z $(on_stack postqueue -c "$POSTFIX_CONFIG" -j 2>/dev/null) ]]; }
  if ! wait_until "$SEED_TIMEOUT" queue_empty; then
    on_stack postqueue -c "$POSTFIX_CONFIG" -p >&2 || true
    die "queue did not drain within ${SEED_TIMEOUT}s (held or deferred mail?)"
  fi
  # the queue is empty; make sure every message was actually delivered (not bounced)
  local id
  all_removed() {
    local i
    for i in $ids; do grep -q " $i: removed" "$POSTFIX_LOG" || return 1; done
  }
  wait_until 5 all_removed || say "warning: not every queue id has a 'removed' log line yet"
  for id in $ids; do
    [[ $id != "?" ]] || continue
    if grep " $id: to=" "$POSTFIX_LOG" | grep -qv ' status=sent '; then
      grep " $id: " "$POSTFIX_LOG" >&2
      die "message $id was not delivered"
    fi
  done
  say "seed: $count message(s) delivered to $rcpt"
}

# ------------------------------------------------------------------ exec
cmd_exec() {
  (( $# >= 2 )) || usage_err "exec needs DIR and a command"
  local dir
  dir=$(abs_path "$1"); shift
  [[ -r $dir/sandbox.env ]] || die "$dir/sandbox.env not found: is the sandbox up?"
  load_stack "$dir"
  on_stack "$@"
}

# ------------------------------------------------------------------ netns
# only 'lo' in *this process's* network namespace (/sys/class/net would show the
# namespace of whoever mounted sysfs, i.e. the host's, so read /proc/self/net/dev)
in_private_netns() {
  local ifs
  ifs=$(awk -F: 'NR > 2 { gsub(/[ \t]/, "", $1); print $1 }' /proc/self/net/dev 2>/dev/null) || return 1
  [[ $ifs == lo ]]
}

cmd_netns() {
  (( $# )) || usage_err "netns needs a command"
  if in_private_netns; then
    ip link set lo up 2>/dev/null || true
    exec "$@"
  fi
  if ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
    skip "unshare and ip (util-linux, iproute2) are required"
  fi
  # a private mount namespace too: the debian13 stack's bind mounts vanish with it
  local un=(unshare --net --mount)
  [[ $(id -u) -eq 0 ]] || un=(unshare --user --map-root-user --net --mount)
  "${un[@]}" true 2>/dev/null || skip "cannot create a network namespace (${un[*]} not permitted)"
  exec "${un[@]}" -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
}

# ------------------------------------------------------------------ main
main() {
  (( $# )) || { usage >&2; exit 2; }
  local cmd=$1; shift
  case $cmd in
    install) cmd_install "$@" ;;
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    seed) cmd_seed "$@" ;;
    exec) cmd_exec "$@" ;;
    netns) cmd_netns "$@" ;;
    -h|--help|help) usage ;;
    *) usage_err "unknown subcommand '$cmd'" ;;
  esac
}

main "$@"
