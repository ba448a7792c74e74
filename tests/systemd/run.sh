#!/bin/bash
# Boots a real systemd from this machine's /usr in a throw-away container
# (boot.sh) with the build tree at /opt/aetask-build and aetask's units in
# /etc/systemd/system, runs driver.sh there, and reports what it found.
#   run.sh BUILD_ROOT TESTS_DIR SBINDIR B_SANITIZE required|optional
# Exit: 0 all passed, 1 something failed, 77 cannot run here (skipped).
set -uo pipefail
build=$1 tests=$2 sbindir=$3 sanitize=${4:-none} boot_mode=${5:-optional}
C=/opt/aetask-build
boot_environment="BUILD=$C SANITIZE=$sanitize"
source "$tests/boot.sh"
boot_check_machine

stage=$(mktemp -d /tmp/aetask-systemd-test.XXXXXX)
# AETASK_TEST_KEEP=1 keeps the results (driver.log, journal.txt) for a look.
trap 'boot_cleanup; [ -n "${AETASK_TEST_KEEP:-}" ] && echo "Results kept in $stage" || rm -rf "$stage"' EXIT
mkdir -p "$stage/dropin"

# The units as installed, with aetaskd's path pointing into the build tree.
for u in aetask@.socket aetask-control@.socket aetask@.service; do
        sed "s|$sbindir/aetaskd|$C/src/aetaskd/aetaskd|" "$build/units/$u" >"$stage/$u"
done
# Test-only settings, as an administrator would make them: a drop-in.
{
        echo "[Service]"
        echo "Environment=AETASK_HANDLER_DIR=$C/src/handlers"
        # The container has no ld.so.cache; the programs have a RUNPATH, this is for the modules.
        echo "Environment=LD_LIBRARY_PATH=$C/src/libaetask-sd"
        # Short enough that a loop not pinging would be restarted during the test.
        echo "WatchdogSec=2s"
        # LeakSanitizer needs ptrace, which the system call filter forbids.
        [ "$sanitize" != none ] && echo "Environment=ASAN_OPTIONS=detect_leaks=0"
} >"$stage/dropin/test.conf"

binds=(
        --bind-ro="$build:$C"
        --bind-ro="$(realpath "$tests/../../units/aetask.sysusers"):/etc/sysusers.d/aetask.conf"
        --bind-ro="$stage/dropin:/etc/systemd/system/aetask@.service.d"
)
for u in aetask@.socket aetask-control@.socket aetask@.service; do
        binds+=(--bind-ro="$stage/$u:/etc/systemd/system/$u")
done

echo "Booting systemd in a container"
start=$(date +%s%N)
boot_container "$stage" "aetask-test-$$" "$tests/driver.sh" 240 "${binds[@]}"
rc=$?
echo "Container exited with status $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms"

results=$stage/results
if [ -f "$results/driver.log" ]; then
        cat "$results/driver.log"
else
        echo "The driver left no log"
fi
if [ ! -f "$results/summary" ]; then
        echo "The container said:"
        tail -n 50 "$stage/console.log"
fi
summary=$(tail -n 1 "$results/summary" 2>/dev/null)
if [ -z "$summary" ]; then
        echo "0 passed, 1 failed (the driver did not finish)"
        exit 1
fi
if [ -f "$results/journal.txt" ]; then
        echo "The journal of the aetask units:"
        tail -n 80 "$results/journal.txt"
fi
[ -f "$results/figures" ] && { echo "Figures:"; sed 's/^/  /' "$results/figures"; }
# Again at the end, where a truncated log still shows them.
grep -E '^(FAIL|SKIP) ' "$results/driver.log"
echo "$summary"
[[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]] && [ "$rc" = 0 ]
