#!/bin/bash
# Coverage: build with gcov counts in build-coverage, run the whole test
# suite there, and print line and branch coverage per source directory.
# Forked workers and servers write their counts before _exit()
# (src/shared/child-exit.h), so code that only runs in them counts too.
# Needs gcovr.  Usage: tests/coverage.sh [BUILD-DIR]; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-coverage}

[ -d "$build" ] || meson setup "$build" -Db_coverage=true
meson compile -C "$build"
# Counts from this run only: gcov adds to what an earlier run left.
find "$build" -name '*.gcda' -delete
# The systemd suite runs the build tree read-only in a container, where no
# counts can be written; it has its own stage in .ci/run.  (A program a test
# runs as another user writes its counts to a scratch folder: GCOV_PREFIX
# in test-status.)
meson test -C "$build" --print-errorlogs --num-processes 2 --no-suite systemd

# One summary per source file, added up per directory below.
gcovr --root . --filter 'src/' --json-summary "$build/coverage.json" -j 2 "$build" >/dev/null
python3 - "$build/coverage.json" <<'PY'
import json, os, sys

dirs = ["src/shared", "src/libaetask-sd", "src/server", "src/aetaskd", "src/handlers", "src/ctl", "src/bench"]
sums = {d: [0, 0, 0, 0] for d in dirs + ["total"]}
for f in json.load(open(sys.argv[1]))["files"]:
    d = os.path.dirname(f["filename"])
    for key in (d, "total"):
        if key in sums:
            s = sums[key]
            s[0] += f["line_covered"]; s[1] += f["line_total"]
            s[2] += f["branch_covered"]; s[3] += f["branch_total"]

def pct(covered, total):
    return f"{100.0 * covered / total:5.1f}%" if total else "    -"

print(f"{'directory':<18} {'lines':>17} {'branches':>17}")
for d, (lc, lt, bc, bt) in sums.items():
    print(f"{d:<18} {pct(lc, lt)} {lc:>5}/{lt:<5} {pct(bc, bt)} {bc:>5}/{bt:<5}")
PY
