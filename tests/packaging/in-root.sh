#!/usr/bin/env bash
# Part of tests/packaging/check-deb.sh: runs inside `unshare --mount` with TRIXIE_ROOT, MIRROR,
# commit, work (holding mailmig.deb) and passed from it. Mounts an overlay over TRIXIE_ROOT (its
# upper layer in $work), installs the package there and checks it; TRIXIE_ROOT is never written.
set -euo pipefail
ok() { passed=$((passed + 1)); printf 'ok: %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; printf 'packaging: %d passed, 1 failed\n' "$passed"; exit 1; }
root=$work/root
mkdir -p "$work/upper" "$work/ovl" "$root"
mount -t overlay overlay -o "lowerdir=$TRIXIE_ROOT,upperdir=$work/upper,workdir=$work/ovl" "$root"
mount -t proc proc "$root/proc"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root "$@"; }

# what an admin has besides the package: man-db and the three shells (Debian's packages)
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf 'deb %s trixie main\n' "$MIRROR" > "$root/etc/apt/sources.list"
log=$work/apt.log
in_root apt-get update -qq >"$log" 2>&1 || fail "apt-get update in the throwaway root: $(tail -n 5 "$log")"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
  man-db zsh fish </dev/null >"$log" 2>&1 \
  || fail "installing man-db zsh fish in the throwaway root: $(tail -n 5 "$log")"
ok "throwaway Debian $(cat "$root/etc/debian_version") root with man-db, zsh, fish"

# the root's files before the package (state of dpkg, apt, man-db's cache and logs aside)
snapshot() {
  (cd "$root" && find . -xdev \( -path ./proc -o -path ./var/lib/dpkg -o -path ./var/cache \
     -o -path ./var/log -o -path ./tmp \) -prune -o -printf '%p %m\n' | sort)
}
before=$(snapshot)

cp "$work/mailmig.deb" "$root/tmp/mailmig.deb"
in_root dpkg -i /tmp/mailmig.deb >/dev/null || fail "dpkg -i"
ok "dpkg -i mailmig"

version=$(in_root mailmig --version)
[[ $version == "mailmig 0.1.0 (commit $commit)" ]] || fail "mailmig --version: '$version' (commit $commit)"
ok "$version"

pages=$(in_root dpkg -L mailmig | grep -c '^/usr/share/man/man8/mailmig.*\.8\.gz$')
(( pages >= 20 )) || fail "only $pages man pages installed"
for page in $(in_root dpkg -L mailmig | sed -n 's|^/usr/share/man/man8/\(.*\)\.8\.gz$|\1|p'); do
  where=$(in_root man -w "$page") || fail "man -w $page"
  [[ $where == "/usr/share/man/man8/$page.8.gz" ]] || fail "man -w $page: $where"
done
ok "man -w finds all $pages pages"
text=$(in_root env MANWIDTH=80 man 8 mailmig 2>&1) || fail "man mailmig: $text"
for want in "EXIT STATUS" "/var/lib/mailmig" "EXAMPLES" "mailmig-migrate(8)"; do
  grep -qF -- "$want" <<<"$text" || fail "man mailmig lacks '$want'"
done
text=$(in_root env MANWIDTH=80 man mailmig-map-check 2>&1) || fail "man mailmig-map-check"
grep -qF -- "--kind" <<<"$text" || fail "man mailmig-map-check lacks --kind"
ok "man renders mailmig(8) (EXIT STATUS, FILES, EXAMPLES) and mailmig-map-check(8)"

# completions: bash and fish complete a subcommand; zsh's file parses and is on zsh's fpath
words=$(in_root bash -c 'source /usr/share/bash-completion/completions/mailmig
  COMP_WORDS=(mailmig ma); COMP_CWORD=1; COMP_LINE="mailmig ma"; COMP_POINT=${#COMP_LINE}
  _mailmig mailmig ma mailmig; printf "%s\n" "${COMPREPLY[@]}"')
grep -qx map <<<"$words" || fail "bash completion of 'mailmig ma': $words"
words=$(in_root env HOME=/tmp fish -c 'complete -C "mailmig map ch"')
grep -q '^check' <<<"$words" || fail "fish completion of 'mailmig map ch': $words"
in_root zsh -n /usr/share/zsh/vendor-completions/_mailmig || fail "zsh: _mailmig does not parse"
in_root zsh -fc '[[ ${fpath[(I)/usr/share/zsh/vendor-completions]} -gt 0 ]]' \
  || fail "/usr/share/zsh/vendor-completions is not on zsh's fpath"
head -n 1 "$root/usr/share/zsh/vendor-completions/_mailmig" | grep -qx '#compdef mailmig' \
  || fail "_mailmig has no #compdef line"
ok "completions: bash 'mailmig ma' -> map, fish 'mailmig map ch' -> check, zsh parses"

[[ $(stat -c '%a %U' "$root/var/lib/mailmig") == "700 root" ]] \
  || fail "/var/lib/mailmig is $(stat -c '%a %U' "$root/var/lib/mailmig")"
out=$(in_root mailmig --state-dir /var/lib/mailmig status 2>&1) || fail "mailmig status: $out"
ok "/var/lib/mailmig 0700 root, mailmig status uses it"
out=$(in_root dpkg --verify mailmig) || fail "dpkg --verify: $out"
[[ -z $out ]] || fail "dpkg --verify: $out"
[[ -s $root/var/lib/dpkg/info/mailmig.md5sums ]] || fail "no md5sums recorded"
echo tampered >> "$root/usr/share/doc/mailmig/README.md"
[[ -n $(in_root dpkg --verify mailmig) ]] || fail "dpkg --verify misses a changed file"
ok "dpkg --verify: every file intact (and a changed one is reported)"

files=$(in_root dpkg -L mailmig | while read -r f; do [[ -f $root$f ]] && echo "$f"; done)
in_root dpkg -r mailmig >/dev/null || fail "dpkg -r"
for f in $files; do [[ ! -e $root$f ]] || fail "dpkg -r left $f"; done
[[ -d $root/var/lib/mailmig ]] || fail "dpkg -r removed the state directory"
ok "dpkg -r: $(wc -w <<<"$files") files gone, /var/lib/mailmig kept"
in_root dpkg -P mailmig >/dev/null || fail "dpkg -P"
[[ ! -e $root/var/lib/mailmig ]] || fail "dpkg -P left /var/lib/mailmig"
after=$(snapshot)
[[ $after == "$before" ]] || fail "the root differs after the purge: $(diff <(echo "$before") <(echo "$after") | head -20)"
ok "dpkg -P: /var/lib/mailmig gone, the root as before the install"

in_root dpkg -i /tmp/mailmig.deb >/dev/null || fail "dpkg -i (again)"
mkdir -p "$root/var/lib/mailmig/users" && touch "$root/var/lib/mailmig/users/alice.run"
in_root dpkg -P mailmig >/dev/null 2>&1 || fail "dpkg -P with an unfinished run"
[[ -e $root/var/lib/mailmig/users/alice.run ]] || fail "dpkg -P removed an unfinished run"
ok "dpkg -P keeps a state directory holding an unfinished run"

printf 'packaging: %d passed, 0 failed\n' "$passed"
