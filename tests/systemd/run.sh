#!/bin/bash
# Boots a real systemd from this machine's /usr in a throw-away container
# (systemd-nspawn --volatile=yes) with the build tree at /opt/aetask-build,
# aetask's units in /etc/systemd/system and a test-driver unit pulled into
# the boot (systemd.wants=), then reports what driver.sh found.  See
# ../../../shared/notes/real-systemd-in-tests.md for why it is done so.
#   run.sh BUILD_ROOT TESTS_DIR SBINDIR B_SANITIZE required|optional
# Exit: 0 all passed, 1 something failed, 77 cannot run here (skipped).
set -uo pipefail
build=$1 tests=$2 sbindir=$3 sanitize=${4:-none} mode=${5:-optional}

skip() {
        if [ "$mode" = required ]; then
                echo "FAILED: cannot run, and -Dsystemd-tests=enabled requires it: $*"
                echo "0 passed, 1 failed"
                exit 1
        fi
        echo "SKIPPED: $*"
        echo "0 passed, 0 failed"
        exit 77
}
[ "$(id -u)" = 0 ] || skip "booting a container needs root (systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is missing (Debian package systemd-container)"
[ -x /lib/systemd/systemd ] || [ -x /usr/lib/systemd/systemd ] || skip "no systemd in /usr to boot"
[ -d /sys/fs/cgroup ] || skip "no cgroup file system"

stage=$(mktemp -d /tmp/aetask-systemd-test.XXXXXX)
machine=aetask-test-$$
pid=
cleanup() {
        # Only the container this script started, by its pid.
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
        rm -rf "$stage"
}
trap cleanup EXIT
mkdir -p "$stage/results" "$stage/dropin"

# The units as installed, with aetaskd's path pointing into the build tree.
C=/opt/aetask-build
for u in aetask@.socket aetask-control@.socket aetask@.service; do
        sed "s|$sbindir/aetaskd|$C/src/server/aetaskd|" "$build/units/$u" >"$stage/$u"
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
cat >"$stage/aetask-test-driver.service" <<UNIT
[Unit]
Description=aetask tests against this systemd
After=basic.target systemd-sysusers.service systemd-journald.service

[Service]
Type=oneshot
Environment=BUILD=$C SANITIZE=$sanitize
ExecStart=/bin/bash /opt/aetask-tests/driver.sh
ExecStopPost=/bin/systemctl poweroff --no-block
TimeoutStartSec=220s
UNIT

binds=(
        --bind-ro="$build:$C"
        --bind-ro="$tests:/opt/aetask-tests"
        --bind="$stage/results:/results"
        --bind-ro="$(realpath "$tests/../../units/aetask.sysusers"):/etc/sysusers.d/aetask.conf"
        --bind-ro="$stage/dropin:/etc/systemd/system/aetask@.service.d"
        --bind-ro="$stage/aetask-test-driver.service:/etc/systemd/system/aetask-test-driver.service"
)
for u in aetask@.socket aetask-control@.socket aetask@.service; do
        binds+=(--bind-ro="$stage/$u:/etc/systemd/system/$u")
done

echo "Booting systemd in container $machine"
start=$(date +%s%N)
timeout --kill-after=10 240 systemd-nspawn -D / --volatile=yes --register=no --keep-unit \
        --machine="$machine" --console=pipe --quiet "${binds[@]}" \
        -b systemd.firstboot=off systemd.wants=aetask-test-driver.service \
        >"$stage/console.log" 2>&1 </dev/null &
pid=$!
wait "$pid"
rc=$?
pid=
echo "Container exited with status $rc after $(( ($(date +%s%N) - start) / 1000000 )) ms"

if [ -f "$stage/results/driver.log" ]; then
        cat "$stage/results/driver.log"
else
        echo "The driver left no log"
fi
if [ ! -f "$stage/results/summary" ]; then
        echo "The container said:"
        tail -n 50 "$stage/console.log"
fi
summary=$(tail -n 1 "$stage/results/summary" 2>/dev/null)
if [ -z "$summary" ]; then
        echo "0 passed, 1 failed (the driver did not finish)"
        exit 1
fi
if [ -f "$stage/results/journal.txt" ]; then
        echo "The journal of the aetask units:"
        tail -n 80 "$stage/results/journal.txt"
fi
[ -f "$stage/results/figures" ] && { echo "Figures:"; sed 's/^/  /' "$stage/results/figures"; }
echo "$summary"
[[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]] && [ "$rc" = 0 ]
