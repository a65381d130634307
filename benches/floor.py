#!/usr/bin/env python3
"""The floor under the whole-table commands: what the least work over each input costs as a
process, beside GNU sed's one pass and mailmig's own command, on the same files.

Called by `benches/cli.sh floor` (which builds the binaries and generates the inputs). Each
row runs its command RUNS times, all rows of a file interleaved (sed, the floors, mailmig,
sed, ...) after one untimed run of each; wall time from fork to exit; medians, and each
median as a fraction of sed's and of the goal (sed's time / 2.5).

usage: floor.py WORK MAILMIG FLOOR RUNS ALIASES USERS
"""

import statistics
import subprocess
import sys
import time

work, mailmig, floor, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
aliases, users = sys.argv[5], sys.argv[6]


def wall(argv):
    start = time.perf_counter()
    code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if code not in (0, 1):
        sys.exit(f"{argv[:4]}... exited {code}")
    return elapsed


for name, path, keys, ours in [
    ("virtual map", f"{work}/virtual", aliases, ["map", "check", "--kind", "virtual"]),
    ("passwd-file", f"{work}/users", users, ["passwd", "check"]),
]:
    rows = [
        ("GNU sed one pass (`sed -e s/x/x/`)", ["sed", "-e", "s/x/x/", path]),
        ("read into one fresh buffer (`floor read`)", [floor, "read", path]),
        ("read through a 1 MiB buffer, lines counted (`floor stream`)", [floor, "stream", path]),
        ("stream + each key's hash into a table (`floor keys`)", [floor, "keys", path, keys]),
        ("the same on two threads, half each (`floor keys2`)", [floor, "keys2", path, keys]),
        ("stream + the keys' hashes sorted (`floor sorted`)", [floor, "sorted", path, keys]),
        (f"`mailmig {' '.join(ours)}`", [mailmig] + ours + [path]),
        (f"`mailmig {'map dump' if 'map' in ours else 'passwd check'}`",
         [mailmig] + (["map", "dump"] if "map" in ours else ["passwd", "check"]) + [path]),
    ]
    if "passwd" in ours:
        rows.pop()
    times = {label: [] for label, _ in rows}
    for label, argv in rows:
        wall(argv)
    for _ in range(runs):
        for label, argv in rows:
            times[label].append(wall(argv))
    sed = statistics.median(times[rows[0][0]])
    print(f"\n{name} ({path}), {runs} runs each, interleaved, medians; the goal (sed / 2.5): "
          f"{sed / 2.5 * 1000:.0f} ms\n")
    print("| what | time | / sed | / goal |")
    print("|---|---|---|---|")
    for label, _ in rows:
        m = statistics.median(times[label])
        print(f"| {label} | {m * 1000:.0f} ms | {m / sed:.2f} | {m / (sed / 2.5):.2f} |")
