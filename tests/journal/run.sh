#!/bin/bash
# Boots a real systemd (the host's /usr in systemd-nspawn, tests/systemd/boot.sh)
# and runs journal-trace there, then asks the real journald for each
# checkout's lines with `journalctl AETASK_TRACE=...` and checks them
# (aetask-journal(7)).  Exit 77 (skipped) where no container can boot here.
#   run.sh JOURNAL_TRACE SOURCE_ROOT BUILD_ROOT required|optional
set -uo pipefail
program=$1 source_root=$2 build_root=$3 boot_mode=${4:-optional}
source "$source_root/tests/systemd/boot.sh"
boot_check_machine

work=$(mktemp -d /tmp/aetask-journal-XXXXXX)
trap 'boot_cleanup; rm -rf "$work"' EXIT
cat > "$work/driver.sh" <<DRIVER
#!/bin/bash
# bcrypt, a handler that logs nothing, with the worker's entry per call on.
$build_root/src/aetaskd/aetaskd --handler bcrypt --handler-dir $build_root/src/handlers \\
        --listen unix:/run/aetask-bcrypt.sock --call-log-level info -o cost=4 &
for _ in \$(seq 100); do [ -S /run/aetask-bcrypt.sock ] && break; sleep 0.05; done
$program unix:/run/aetask-bcrypt.sock > /results/client.out 2>&1
echo \$? > /results/client.rc
journalctl --sync
journalctl AETASK_TRACE=aetask-journal-bcrypt -o json > /results/bcrypt.json
journalctl AETASK_TRACE=aetask-journal-a -o json > /results/a.json
journalctl AETASK_TRACE=aetask-journal-b -o json > /results/b.json
journalctl AETASK_TRACE=aetask-journal-a -o short-precise > /results/a.txt
journalctl -x MESSAGE_ID=246a2c1d82ee415dbf822de31e7a7c4d > /dev/null 2>&1 || true
DRIVER

boot_container "$work" "aetask-journal-$$" "$work/driver.sh" 90 \
        --bind-ro="$source_root" --bind-ro="$build_root"
rc=$?
if [ $rc -ne 0 ] || [ ! -s "$work/results/a.json" ]; then
        echo "the container run failed (rc=$rc):"; tail -20 "$work/console.log"; cat "$work/results/client.out" 2>/dev/null
        echo "0 passed, 1 failed"; exit 1
fi

echo "--- journalctl AETASK_TRACE=aetask-journal-a -o short-precise"
cat "$work/results/a.txt"

python3 - "$work/results" <<'CHECK'
import json, sys
results = sys.argv[1]
def entries(name):
    return [json.loads(l) for l in open(f"{results}/{name}") if l.strip()]
a, b = entries("a.json"), entries("b.json")
passed = failed = 0
def check(what, ok, detail=""):
    global passed, failed
    if ok: passed += 1
    else:
        failed += 1
        print(f"FAIL {what} {detail}")
check("client exit", open(f"{results}/client.rc").read().strip() == "0")
for name, es in (("a", a), ("b", b)):
    client = [e for e in es if e.get("AETASK_ORIGIN") == "client"]
    worker = [e for e in es if e.get("AETASK_ORIGIN") == "worker"]
    events = {e.get("AETASK_EVENT") for e in client}
    check(f"{name}: client entries queued/assigned, call, released", {"call", "released"} <= events and events & {"queued", "assigned"}, str(events))
    check(f"{name}: client entries name the client", all(e.get("AETASK_CLIENT") == "journal-trace" for e in client))
    check(f"{name}: call entries carry method and duration", all("AETASK_METHOD" in e and "AETASK_DURATION_USEC" in e for e in client if e.get("AETASK_EVENT") == "call"))
    msgs = [e.get("MESSAGE") for e in worker]
    check(f"{name}: worker lines setup and work", any(m.startswith("setup of worker") for m in msgs) and any(m.startswith("working on") for m in msgs), str(msgs))
    # b's worker raised, so it is closed rather than pooled: no checkout_done there.
    if name == "a":
        check("a: the checkout-done hook's line", any(m.endswith("done") for m in msgs), str(msgs))
    for field in ("AETASK_HANDLER", "AETASK_METHOD", "AETASK_WORKER", "AETASK_WORKER_PID", "PRIORITY", "MESSAGE"):
        check(f"{name}: worker entries have {field}", all(field in e for e in worker))
    check(f"{name}: worker and client pids differ", {e.get("_PID") for e in worker}.isdisjoint({e.get("_PID") for e in client}))
    times = [int(e["__REALTIME_TIMESTAMP"]) for e in es]
    check(f"{name}: in time order", times == sorted(times))
check("a: only its own lines", all(e.get("AETASK_TRACE") == "aetask-journal-a" for e in a) and not any("request b" in e.get("MESSAGE", "") for e in a))
check("b: only its own lines", not any("request a" in e.get("MESSAGE", "") for e in b))
check("b: the error is there with its kind", any(e.get("AETASK_ERROR_KIND") == "handler" for e in b))
check("b: the worker's warning before the failure", any(e.get("MESSAGE") == "about to fail" and e.get("PRIORITY") == "4" for e in b))
bc = [e for e in entries("bcrypt.json") if e.get("AETASK_ORIGIN") == "worker"]
check("bcrypt: the worker's own entry for the call", any(e.get("AETASK_EVENT") == "call" and e.get("AETASK_METHOD") == "hash"
      and e.get("AETASK_OUTCOME") == "answered" and "AETASK_DURATION_USEC" in e and e.get("AETASK_HANDLER") == "bcrypt"
      for e in bc), str([e.get("MESSAGE") for e in bc]))
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
CHECK
