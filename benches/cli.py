#!/usr/bin/env python3
"""What users run, measured as whole processes beside a reference over the same files.

Called by benches/cli.sh (which builds mailmig and generates the inputs). Each case runs the
mailmig command and its reference (GNU sed, grep -F, postmap) alternately, RUNS times each, with
the page cache warm (one untimed run of each first); files an edit changes are restored before
every run, outside the timing. Wall time from fork to exit (time.perf_counter around
the process), peak RSS of that process (GNU time's %M). Prints a Markdown table: medians,
the ratio mailmig / reference, mailmig's peak RSS and its ratio to the input size.

usage: cli.py WORK MAILMIG RUNS ALIASES USERS
"""

import os
import shutil
import statistics
import subprocess
import sys
import time

work, mailmig, runs, aliases, users = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
virtual = f"{work}/virtual"
passwd = f"{work}/users"
access = f"{work}/access"
pf = f"{work}/pf"


def run(argv):
    """Wall seconds and peak RSS (KiB) of one process; its output discarded. The process is
    started by GNU time (`/usr/bin/time -f %M`), whose own RSS is the floor of the figure: a
    process forked from Python would count Python's pages as its own."""
    rss_file = f"{work}/rss"
    devnull = subprocess.DEVNULL
    start = time.perf_counter()
    code = subprocess.call(["/usr/bin/time", "-f", "%M", "-o", rss_file] + argv,
                           stdout=devnull, stderr=devnull, stdin=devnull)
    wall = time.perf_counter() - start
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    return wall, rss, code


def restore(pairs):
    for src, dst in pairs:
        shutil.copyfile(src, dst)


# A key near the end of the virtual map (i % 10 == 4: `aI.name@dD.example`), a mailbox that
# aliases reach, a user near the end of the passwd-file.
i = aliases - 6
key = f"a{i}.name@d{i % 97}.example"
mailbox = f"user12345@d{12345 % 97}.example"
u = users * 9 // 10
user = f"user{u}@d{u % 97}.example"

shutil.copyfile(virtual, f"{work}/virtual.orig")
shutil.copyfile(passwd, f"{work}/users.orig")
shutil.copyfile(access, f"{work}/access.orig")
restore_access = [(f"{work}/access.orig", access)]
restore_passwd = [(f"{work}/users.orig", passwd)]
restore_virtual = [(f"{work}/virtual.orig", virtual)]
key_re = key.replace(".", "\\.")

M = [mailmig]
cases = [
    # name, mailmig argv, reference name, reference argv, input file, files to restore
    ("map check --kind virtual", M + ["map", "check", "--kind", "virtual", virtual],
     "sed one pass", ["sed", "-e", "s/x/x/", virtual], virtual, []),
    ("map dump", M + ["map", "dump", virtual],
     "sed one pass", ["sed", "-e", "s/x/x/", virtual], virtual, []),
    ("passwd check", M + ["passwd", "check", passwd],
     "sed one pass", ["sed", "-e", "s/x/x/", passwd], passwd, []),
    ("map get KEY", M + ["map", "get", virtual, key],
     "grep -F", ["grep", "-F", key, virtual], virtual, []),
    ("passwd show USER", M + ["passwd", "show", passwd, user],
     "grep -F", ["grep", "-F", f"{user}:", passwd], passwd, []),
    ("aliases ADDR", M + ["aliases", "--virtual", virtual, mailbox],
     "grep -F", ["grep", "-F", mailbox, virtual], virtual, []),
    ("hold add (one mailbox)", M + ["--postfix-config", pf, "hold", "add", "--map", access, mailbox],
     "sed + postmap access", ["sh", "-c", f"sed -i '$a {mailbox} HOLD' {access} && postmap -c {pf} hash:{access}"],
     virtual, restore_access),
    ("map set KEY (no postmap)", M + ["map", "set", "--no-postmap", virtual, key, "moved@example.test"],
     "sed -i", ["sed", "-i", f"s/^{key_re}[ \t].*$/{key_re} moved@example.test/", virtual], virtual, restore_virtual),
    ("passwd set", M + ["passwd", "set", passwd, user, "allow_nets="],
     "sed -i", ["sed", "-i", f"s/^\\({user}:.*\\)$/\\1 allow_nets=/", passwd], passwd, restore_passwd),
]

rows = []
for name, argv, ref_name, ref, input_file, restores in cases:
    size = os.path.getsize(input_file)
    # Warm the page cache, and check both commands work.
    for a in (argv, ref):
        restore(restores)
        _, _, code = run(a)
        if code not in (0, 1):
            sys.exit(f"{name}: {a[:4]}... exited {code}")
    ours, theirs, rss, ref_rss = [], [], [], []
    for _ in range(runs):
        restore(restores)
        w, r, _ = run(argv)
        ours.append(w)
        rss.append(r)
        restore(restores)
        w, r, _ = run(ref)
        theirs.append(w)
        ref_rss.append(r)
    m, t = statistics.median(ours), statistics.median(theirs)
    peak = max(rss) * 1024
    rows.append((name, m, ref_name, t, m / t, peak, peak / size, max(ref_rss) * 1024))
    print(f"{name}: {m * 1000:.0f} ms vs {ref_name} {t * 1000:.0f} ms", file=sys.stderr)

mib = 1 << 20
print(f"Inputs: virtual map {aliases:,} aliases ({os.path.getsize(virtual) / mib:.0f} MiB), "
      f"passwd-file {users:,} users ({os.path.getsize(passwd) / mib:.0f} MiB); {runs} runs each, "
      f"interleaved, medians.\n")
print("| command | mailmig | reference | reference time | mailmig / reference | mailmig peak RSS | RSS / input | reference RSS |")
print("|---|---|---|---|---|---|---|---|")
for name, m, ref_name, t, ratio, peak, per, ref_peak in rows:
    print(f"| `{name}` | {m * 1000:.0f} ms | {ref_name} | {t * 1000:.0f} ms | {ratio:.2f}× | "
          f"{peak / mib:.0f} MiB | {per:.2f}× | {ref_peak / mib:.1f} MiB |")
