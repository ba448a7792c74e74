#!/bin/bash
# examples/verify-daemon under a real systemd (boot.sh): its shipped units,
# socket-activated, in front of aetask@bcrypt.socket; verify-daemon-driver.sh
# runs inside and checks a real request and the cancel on hang-up.
#   run-verify-daemon.sh BUILD_ROOT SOURCE_ROOT SBINDIR required|optional
# Exit: 0 passed, 1 failed, 77 cannot run here (skipped).
set -uo pipefail
build=$1 source_root=$2 sbindir=$3 boot_mode=${4:-optional}
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

binds=(
        --bind-ro="$build:$C"
        --bind-ro="$source_root/units/aetask.sysusers:/etc/sysusers.d/aetask.conf"
        --bind-ro="$stage/aetask-dropin:/etc/systemd/system/aetask@.service.d"
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
