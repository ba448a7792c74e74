#!/bin/bash
# README's "Under systemd" and "A client in C" blocks, run as they are written
# in a booted systemd (boot.sh) that stands in for a fresh machine: the
# repository at its own path (writable, the changes kept inside), /usr
# writable for `meson install`, and the host's loader and alternatives
# configuration, which a real machine's /etc has.
#   run-readme.sh SOURCE_ROOT BUILD_ROOT required|optional
# Exit: 0 passed, 1 failed, 77 cannot run here (skipped).
set -uo pipefail
source_root=$1 build_root=$2 boot_mode=${3:-optional}
source "$source_root/tests/systemd/boot.sh"

# README's commands name the build tree build/: only that build can run them.
if [ "$(realpath "$build_root")" != "$(realpath "$source_root/build")" ]; then
        echo "SKIPPED: README's commands use build/, and this build tree is $build_root"
        exit 77
fi
boot_check_machine

stage=$(mktemp -d /tmp/aetask-readme-test.XXXXXX)
trap 'boot_cleanup; rm -rf "$stage"' EXIT
boot_environment="SOURCE=$source_root"
boot_container "$stage" "aetask-readme-$$" "$source_root/tests/systemd/readme-driver.sh" 200 \
        --overlay=/usr::/usr \
        --bind-ro="$source_root" --overlay="$source_root::$source_root" \
        --bind-ro=/etc/ld.so.conf --bind-ro=/etc/ld.so.conf.d --bind-ro=/etc/alternatives
rc=$?
cat "$stage/results/driver.log" 2>/dev/null || { echo "The driver left no log; the container said:"; tail -n 40 "$stage/console.log"; }
summary=$(tail -n 1 "$stage/results/summary" 2>/dev/null)
echo "${summary:-0 passed, 1 failed (the driver did not finish)}"
[[ "$summary" =~ ^[0-9]+\ passed,\ 0\ failed$ ]] && [ "$rc" = 0 ]
