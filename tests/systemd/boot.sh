# Sourced by the suites that boot a real systemd (tests/systemd/run.sh,
# run-readme.sh, tests/journal/run.sh): this machine's /usr booted in a
# throw-away systemd-nspawn container (--volatile=yes: a tmpfs root, nothing
# written inside reaches the host), with a test-driver unit pulled into the
# boot.  Why so, and what works there: tests/systemd/README.md.
#
# A machine that cannot boot a container (not root, no systemd-nspawn, no
# cgroups, a sandbox that forbids it) is told apart from a failure: the
# driver unit marks /results/booted before anything else, so a container
# that ends without the mark never booted.  That is a skip (exit 77), or a
# failure when the build asked for these tests (-Dsystemd-tests=enabled).

# Set by the caller: boot_mode, "required" or "optional"; boot_environment,
# the driver unit's Environment= line (assignments, as systemd reads them).
boot_mode=${boot_mode:-optional}
boot_environment=${boot_environment:-}

cannot_boot() {  # cannot_boot REASON...: skip, or fail when required
        if [ "$boot_mode" = required ]; then
                echo "FAILED: this machine cannot boot a container, and -Dsystemd-tests=enabled requires it: $*"
                echo "0 passed, 1 failed"
                exit 1
        fi
        echo "SKIPPED: this machine cannot boot a container: $*"
        echo "0 passed, 0 failed"
        exit 77
}

# Checks what can be checked before trying.
boot_check_machine() {
        [ "$(id -u)" = 0 ] || cannot_boot "booting a container needs root (systemd-nspawn)"
        command -v systemd-nspawn >/dev/null || cannot_boot "systemd-nspawn is missing (Debian package systemd-container)"
        [ -x /lib/systemd/systemd ] || [ -x /usr/lib/systemd/systemd ] || cannot_boot "no systemd in /usr to boot"
        [ -d /sys/fs/cgroup ] || cannot_boot "no cgroup file system"
}

# boot_container STAGE MACHINE DRIVER_SCRIPT TIMEOUT_S [NSPAWN_ARGS...]
# Boots with DRIVER_SCRIPT (bash, at /driver.sh inside) run by a oneshot unit
# once the system is up; STAGE/results is /results inside, STAGE/console.log
# what the container printed.  Returns the container's exit status, having
# called cannot_boot if it never booted.
boot_container() {
        local stage=$1 machine=$2 driver=$3 limit=$4 rc
        shift 4
        mkdir -p "$stage/results"
        cat >"$stage/aetask-test-driver.service" <<UNIT
[Unit]
Description=aetask tests against this systemd
After=basic.target systemd-sysusers.service systemd-journald.service

[Service]
Type=oneshot
Environment=$boot_environment
ExecStartPre=/bin/touch /results/booted
ExecStart=/bin/bash /driver.sh
ExecStopPost=/bin/systemctl poweroff --no-block
TimeoutStartSec=$((limit - 20))s
UNIT
        timeout --kill-after=10 "$limit" systemd-nspawn -D / --volatile=yes --register=no --keep-unit \
                --machine="$machine" --console=pipe --quiet \
                --bind="$stage/results:/results" \
                --bind-ro="$driver:/driver.sh" \
                --bind-ro="$stage/aetask-test-driver.service:/etc/systemd/system/aetask-test-driver.service" \
                "$@" \
                -b systemd.firstboot=off systemd.wants=aetask-test-driver.service \
                >"$stage/console.log" 2>&1 </dev/null &
        boot_pid=$!
        wait "$boot_pid"
        rc=$?
        boot_pid=
        if [ ! -e "$stage/results/booted" ]; then
                cannot_boot "systemd-nspawn exited with status $rc before the test driver ran; it said:
$(tail -n 15 "$stage/console.log")"
        fi
        return "$rc"
}

# The container this script started, if it is still running (by its pid,
# never by name: another may have the same).
boot_cleanup() {
        [ -n "${boot_pid:-}" ] && kill -0 "$boot_pid" 2>/dev/null && kill -TERM "$boot_pid" 2>/dev/null
        return 0
}
