#!/bin/bash
# Runs inside the container that run-verify-daemon.sh boots: verify-daemon's
# shipped units, socket-activated, with aetask@bcrypt.socket; a real request
# through its socket, and a requester that hangs up with calls outstanding,
# seen cancelled in its stats and its journal.
set -u
exec >/results/driver.log 2>&1
B=${BUILD:-/opt/aetask-build}
ASK=$B/examples/verify-request
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { if "${@:2}"; then ok "$1"; else fail "$1"; fi; }
equal() { if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi; }
stat_of() { [[ "$2" =~ [[:space:]]$1=([0-9]+) ]] && echo "${BASH_REMATCH[1]}"; }

systemd-sysusers
# A slow hash and one worker, so that a hang-up finds one call in a worker
# and two waiting for it.
mkdir -p /etc/aetask /etc/systemd/system/verify-daemon.service.d
echo 'AETASK_ARGS="-o cost=13"' >/etc/aetask/bcrypt.conf
printf '[Service]\nExecStart=\nExecStart=%s/examples/verify-daemon --max-workers 1\n' "$B" \
        >/etc/systemd/system/verify-daemon.service.d/build.conf
systemctl daemon-reload
systemctl start aetask@bcrypt.socket verify-daemon.socket
check "verify-daemon.socket is listening" systemctl is-active -q verify-daemon.socket
check "verify-daemon.service waits for its first connection" test "$(systemctl show -p ActiveState --value verify-daemon.service)" = inactive

out=$("$ASK" /run/verify-daemon.sock "hash secret")
is_hash() { [[ "$1" =~ ^1\ ok\ \$2b\$13\$[./A-Za-z0-9]{53}$ ]]; }
check "a hash through the socket-activated daemon and aetask@bcrypt: $out" is_hash "$out"
equal "verify-daemon.service came up (Type=notify)" "active running" \
        "$(systemctl show -p ActiveState --value verify-daemon.service) $(systemctl show -p SubState --value verify-daemon.service)"
check "aetask@bcrypt.service was started by it" systemctl is-active -q aetask@bcrypt.service
hash=${out#1 ok }
equal "verify true and false" "1 ok true 2 ok false" "$("$ASK" /run/verify-daemon.sock "verify $hash secret" "verify $hash wrong" | sort | tr '\n' ' ' | sed 's/ $//')"

"$ASK" --hang-up /run/verify-daemon.sock "hash a" "hash b" "hash c"
for _ in $(seq 100); do
        out=$("$ASK" /run/verify-daemon.sock stats)
        [ "$(stat_of outstanding "$out")" = 0 ] && break
        sleep 0.1
done
echo "stats: $out"
equal "the hang-up cancelled its three calls" "cancelled=3 outstanding=0" \
        "cancelled=$(stat_of cancelled "$out") outstanding=$(stat_of outstanding "$out")"
journal=$(journalctl -u verify-daemon.service -o cat --no-pager)
echo "$journal" | sed 's/^/  journal: /'
check "the journal says so" grep -q "hung up with 3 requests outstanding: cancelling their calls" <<<"$journal"
out=$("$ASK" /run/verify-daemon.sock "verify $hash secret")
equal "the pool serves the next request" "1 ok true" "$out"

systemctl stop verify-daemon.socket verify-daemon.service
equal "verify-daemon stops cleanly" "inactive 0" \
        "$(systemctl show -p ActiveState --value verify-daemon.service) $(systemctl show -p ExecMainStatus --value verify-daemon.service)"
echo "$passed passed, $failed failed" | tee /results/summary
