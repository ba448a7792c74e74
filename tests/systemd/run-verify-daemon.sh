#!/bin/bash
# examples/verify-daemon under a real systemd (boot.sh): its shipped units,
# socket-activated, in front of aetask@bcrypt.socket; verify-daemon-driver.sh
# runs inside and checks a real request and the cancel on hang-up.
#   run-verify-daemon.sh BUILD_ROOT SOURCE_ROOT SBINDIR SANITIZE required|optional
# Exit: 0 passed, 1 failed, 77 cannot run here (skipped).
set -uo pipefail
build=$1 source_root=$2 sbindir=$3 sanitize=${4:-none} boot_mode=${5:-optional}
C=/opt/aetask-build
boot_environment="BUILD=$C"
source "$source_root/tests/systemd/boot.sh"
boot_check_machine

stage=$(mktemp -d /tmp/aetask-verify-daemon-test.XXXXXX)
trap 'boot_cleanup; rm -rf "$stage"' EXIT
mkdir -p "$stage/units" "$stage/aetask-dropin"
# aetask's units as installed, aetaskd from the build tree; the example's as shipped.
for u in aetask@.socket aetask-control@.socket aetask@.service; do
        sed "s|$sbindir/aetaskd|$C/src/aetaskd/aetaskd|" "$build/units/$u" >"$stage/units/$u"
done
cp "$source_root/examples/verify-daemon.socket" "$source_root/examples/verify-daemon.service" "$stage/units/"
printf '[Service]\nEnvironment=AETASK_HANDLER_DIR=%s/src/handlers\n' "$C" >"$stage/aetask-dropin/test.conf"
# A sanitized build's LeakSanitizer cannot stop the world under the units'
# system call filter (no ptrace): at exit it hangs until SIGKILL.  As run.sh.
mkdir -p "$stage/verify-dropin"
: >"$stage/verify-dropin/test.conf"
if [ "$sanitize" != none ]; then
        echo "Environment=ASAN_OPTIONS=detect_leaks=0" >>"$stage/aetask-dropin/test.conf"
        printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' >"$stage/verify-dropin/test.conf"
fi

binds=(
        --bind-ro="$build:$C"
        --bind-ro="$source_root/units/aetask.sysusers:/etc/sysusers.d/aetask.conf"
        --bind-ro="$stage/aetask-dropin:/etc/systemd/system/aetask@.service.d"
        --bind-ro="$stage/verify-dropin/test.conf:/etc/systemd/system/verify-daemon.service.d/sanitize.conf"
)
for u in "$stage"/units/*; do
        binds+=(--bind-ro="$u:/etc/systemd/system/$(basename "$u")")
done
boot_container "$stage" "aetask-verify-$$" "$source_root/tests/systemd/verify-daemon-driver.sh" 120 "${binds[@]}"
rc=$?
cat "$stage/results/driver.log" 2>/dev/null || { echo "The driver left no log; the container said:"; tail -n 40 "$stage/console.log"; }
summary=$(tail -n 1 "$stage/results/summary" 2>/dev/null)
echo "${summary:-0 passed, 1 failed (the driver did not finish)}"
[[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]] && [ "$rc" = 0 ]
