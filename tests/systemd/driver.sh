#!/bin/bash
# Runs inside the container that run.sh boots, as the oneshot unit
# aetask-test-driver.service: checks aetask's units against a real systemd
# and leaves driver.log, figures and summary ("N passed, M failed") in
# /results.  The container powers off when this ends (ExecStopPost=).
set -u
exec >/results/driver.log 2>&1
B=${BUILD:-/opt/aetask-build}
CTL="$B/src/ctl/aetaskctl --timeout=10"
LOAD=$B/tests/systemd/aetask-load
passed=0 failed=0

ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() {  # check NAME COMMAND...: passes when COMMAND succeeds
        local name=$1
        shift
        if "$@"; then ok "$name"; else fail "$name"; fi
}
equal() {  # equal NAME EXPECTED ACTUAL
        if [ "$2" == "$3" ]; then ok "$1"; else fail "$1: expected [$2], got [$3]"; fi
}
figure() { echo "FIGURE $*"; echo "$*" >>/results/figures; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
prop() { systemctl show -p "$2" --value "$1"; }
# Processes whose title is "NAME: worker N" (the worker's proctitle).
worker_pids() {
        local f
        for f in /proc/[0-9]*/cmdline; do
                [[ "$(tr -d '\0' <"$f" 2>/dev/null)" == "$1: worker "* ]] && { f=${f#/proc/}; echo "${f%/cmdline}"; }
        done
}
workers_of() { worker_pids "$1" | wc -l; }
status_line_ok() {
        [[ "$1" =~ ^(Draining:\ )?[0-9]+\ workers?\ \([0-9]+\ busy,\ [0-9]+\ idle\),\ [0-9]+\ calls?\ served\ \([0-9]+\.[0-9]/s\),\ [0-9]+\ killed\ as\ hung$ ]]
}
tenths() {  # "1.6" -> 16, without awk (an alternative, missing in the container)
        local whole=${1%%.*} frac=0
        [[ "$1" == *.* ]] && frac=${1#*.}
        echo $(( whole * 10 + ${frac:0:1} ))
}
calls_served() { [[ "$1" =~ ([0-9]+)\ calls?\ served ]] && echo "${BASH_REMATCH[1]}"; }

echo "== set-up"
systemd-sysusers
check "group aetask exists (sysusers.d/aetask.conf)" getent group aetask
aetask_gid=$(getent group aetask | cut -d: -f3)
mkdir -p /etc/aetask
# Per-handler configuration files, as shipped: /etc/aetask/NAME.conf.
echo "AETASK_ARGS=--handler-dir=$B/tests/systemd" >/etc/aetask/counter.conf
echo 'AETASK_ARGS="-o cost=4"' >/etc/aetask/bcrypt.conf

echo "== socket activation"
systemctl start aetask@echo.socket
check "aetask@echo.socket is listening" systemctl is-active -q aetask@echo.socket
check "aetask-control@echo.socket came along" systemctl is-active -q aetask-control@echo.socket
equal "socket mode and group" "660 aetask" "$(stat -c '%a %G' /run/aetask/echo.sock)"
equal "control socket mode and group" "660 aetask" "$(stat -c '%a %G' /run/aetask/echo.control)"
check "the service does not run before the first connection" test "$(prop aetask@echo.service ActiveState)" = inactive
out=$($LOAD --seconds=0 --method=echo --prefix=first unix:/run/aetask/echo.sock)
check "first call through libaetask-sd, socket-activated: $(echo $out)" grep -q "answered=1 failed=0" <<<"$out"
[[ "$out" =~ latency_ms=([0-9.]+) ]] && figure "first socket-activated call: ${BASH_REMATCH[1]} ms (connect, service start, READY=1, fork, call)"
check "the service runs after it" systemctl is-active -q aetask@echo.service
equal "Type=notify service got READY=1" "running" "$(prop aetask@echo.service SubState)"
out=$($LOAD --seconds=0 --method=echo --prefix=second unix:/run/aetask/echo.sock)
[[ "$out" =~ latency_ms=([0-9.]+) ]] && figure "a call on a new connection to the running service: ${BASH_REMATCH[1]} ms (fork, call)"
equal "aetaskctl NAME call" '"héllo"' "$($CTL echo call echo '"héllo"')"
equal "aetaskctl --connect call" '[1,"two"]' "$($CTL --connect unix:/run/aetask/echo.sock call - 1 two)"
equal "aetaskctl reports handler errors" "aetaskctl: handler error: boom" "$($CTL echo call fail boom 2>&1)"

echo "== sd_notify: STATUS="
sleep 1.3   # the line is refreshed once a second
status=$(prop aetask@echo.service StatusText)
echo "StatusText: $status"
check "STATUS= line has the documented shape" status_line_ok "$status"
equal "calls served counts the workers that have exited" 5 "$(calls_served "$status")"

echo "== workers in the unit's cgroup"
$CTL echo call sleep 2.5 >/tmp/sleep1.out &
bg1=$!
$CTL echo call sleep 2.5 >/tmp/sleep2.out &
bg2=$!
sleep 1.3
cgroup=$(prop aetask@echo.service ControlGroup)
in_cgroup=0
for pid in $(worker_pids echo); do
        grep -qx "0::$cgroup" "/proc/$pid/cgroup" && in_cgroup=$((in_cgroup + 1))
done
equal "both workers are in the service's cgroup $cgroup" 2 "$in_cgroup"
# Under the unit's system call filter too, workers switch to SCHED_BATCH
# (3, the 41st field of /proc/PID/stat).
batch=0
for pid in $(worker_pids echo); do
        stat=$(<"/proc/$pid/stat")
        read -ra fields <<<"${stat##*) }"
        [ "${fields[38]}" = 3 ] && batch=$((batch + 1))
done
equal "both workers run at SCHED_BATCH" 2 "$batch"
st=$(systemctl status --no-pager -n0 aetask@echo.service 2>&1)
echo "$st"
# In a container on a hybrid-cgroup host, systemd sometimes cannot read the
# unit's cgroup ("Failed to dump process list ... Input/output error"):
# then the cgroup check above is what counts.
if grep -q "Failed to dump process list" <<<"$st"; then
        echo "SKIP systemctl status lists the worker processes: systemd could not read the cgroup here"
else
        equal "systemctl status lists the worker processes" 2 "$(grep -c 'echo: worker' <<<"$st")"
fi
check "systemctl status shows the STATUS line with 2 busy" grep -q "Status: \"2 workers (2 busy, 0 idle)" <<<"$st"

echo "== aetaskctl status"
st=$($CTL status echo)
echo "$st"
check "status: header line" grep -q "^echo: aetaskd pid $(prop aetask@echo.service MainPID), handler echo, up" <<<"$st"
check "status: counts" grep -q "^Workers: 2 (2 busy, 0 idle) of at most 256, 128 per user; 7 calls served, 0 killed as hung" <<<"$st"  # the two sleeps running count
check "status: workers per user" grep -q "^uid 0  *2  *2$" <<<"$st"
equal "status: both workers busy in sleep" 2 "$(grep -cE '^ +[0-9]+ +[0-9]+ busy +[0-9]+ +0 sleep ' <<<"$st")"
js=$($CTL --json echo status)
check "status --json: the client pid of each worker" grep -q "\"client_pid\":$bg1," <<<"$js"
check "status --json: the client pid of each worker" grep -q "\"client_pid\":$bg2," <<<"$js"
check "status --json: the clients' uid (root)" grep -q '"client_uid":0,' <<<"$js"
out=$(setpriv --reuid=4242 --regid=4242 --clear-groups $CTL status echo 2>&1)
check "status: refused to a user outside group aetask ($out)" grep -q "Permission denied" <<<"$out"
out=$(setpriv --reuid=4242 --regid=4242 --groups="$aetask_gid" $CTL status echo 2>&1)
check "status: allowed to a member of group aetask (peer groups)" grep -q "^echo: aetaskd pid" <<<"$out"
out=$(setpriv --reuid=4242 --regid=4242 --groups="$aetask_gid" $CTL echo call echo 7 2>&1)
equal "call: allowed to a member of group aetask" 7 "$out"
wait $bg1 $bg2
equal "the sleeping calls were answered" "null null" "$(cat /tmp/sleep1.out) $(cat /tmp/sleep2.out)"

echo "== watchdog"
equal "WatchdogSec= reaches the service" 2s "$(prop aetask@echo.service WatchdogUSec)"
w1=$(prop aetask@echo.service WatchdogTimestampMonotonic)
sleep 1.5
w2=$(prop aetask@echo.service WatchdogTimestampMonotonic)
check "WATCHDOG=1 pings arrive ($w1 -> $w2)" test "$w2" -gt "$w1"

echo "== restart under load"
systemctl start aetask@counter.socket
$CTL counter call record warmup >/dev/null
pids=("$(prop aetask@counter.service MainPID)")
rm -f /tmp/load.*
for i in 1 2 3 4; do
        $LOAD --prefix="c$i" --seconds=7 --concurrency=4 --sleep-ms=40 unix:/run/aetask/counter.sock \
                >"/tmp/load.$i.out" 2>"/tmp/load.$i.err" &
        loads[$i]=$!
done
sleep 1.5
restarts=0
for r in 1 2 3; do
        t0=$(now_ms)
        systemctl restart aetask@counter.service && restarts=$((restarts + 1))
        echo "restart $r took $(( $(now_ms) - t0 )) ms"
        pids+=("$(prop aetask@counter.service MainPID)")
        sleep 1.5
done
load_ok=0
for i in 1 2 3 4; do wait "${loads[$i]}" || load_ok=1; done
sent=0 answered=0 lost=0 unanswered=0 max=0
for i in 1 2 3 4; do
        line=$(cat "/tmp/load.$i.out")
        echo "client $i: $line"
        sed 's/^/  /' "/tmp/load.$i.err"
        [[ "$line" =~ sent=([0-9]+)\ answered=([0-9]+)\ failed=([0-9]+)\ unanswered=([0-9]+)\ max_ms=([0-9.]+) ]] || continue
        sent=$((sent + BASH_REMATCH[1])) answered=$((answered + BASH_REMATCH[2]))
        lost=$((lost + BASH_REMATCH[3])) unanswered=$((unanswered + BASH_REMATCH[4]))
        m=${BASH_REMATCH[5]%.*}
        [ "$m" -gt "$max" ] && max=$m
done
log=/var/lib/aetask/counter/calls.log
ran=$(grep -c '^c[0-9]-' "$log")
dups=$(grep '^c[0-9]-' "$log" | sort | uniq -d | wc -l)
figure "restart under load: $restarts restarts, 4 clients, $sent calls made, $answered answered, $lost failed, $unanswered unanswered, $dups run twice, $ran runs logged; slowest call $max ms"
equal "$restarts restarts while loaded" 3 "$restarts"
equal "4 different aetaskd processes served" 4 "$(printf '%s\n' "${pids[@]}" | sort -u | wc -l)"
check "calls were made ($sent)" test "$sent" -gt 100
equal "every call answered" "$sent" "$answered"
equal "no call failed" 0 "$lost"
equal "the load clients were content" 0 "$load_ok"
equal "no call ran twice" 0 "$dups"
equal "each call ran once" "$sent" "$ran"
equal "no worker was killed while draining" "" "$(journalctl -q -u aetask@counter.service -o cat | grep -E 'killed|died')"

echo "== aetaskd killed under load"
# The server dies with workers busy and idle (the clients keep pooled
# connections): the workers retire (PR_SET_PDEATHSIG), so systemd restarts
# the service at once (Restart=on-failure), not after TimeoutStopSec=.
for i in 1 2; do
        $LOAD --prefix="k$i" --seconds=4 --concurrency=4 --sleep-ms=40 unix:/run/aetask/counter.sock \
                >"/tmp/kill.$i.out" 2>"/tmp/kill.$i.err" &
        loads[$i]=$!
done
sleep 1
old_pid=$(prop aetask@counter.service MainPID)
t0=$(now_ms)
systemctl kill -s SIGKILL --kill-whom=main aetask@counter.service
for _ in $(seq 100); do
        new_pid=$(prop aetask@counter.service MainPID)
        [ "$new_pid" != 0 ] && [ "$new_pid" != "$old_pid" ] && break
        sleep 0.05
done
back=$(( $(now_ms) - t0 ))
for i in 1 2; do wait "${loads[$i]}"; done
sent=0 answered=0
for i in 1 2; do
        line=$(cat "/tmp/kill.$i.out")
        echo "client $i: $line"
        sed 's/^/  /' "/tmp/kill.$i.err"
        [[ "$line" =~ sent=([0-9]+)\ answered=([0-9]+) ]] &&
                sent=$((sent + BASH_REMATCH[1])) answered=$((answered + BASH_REMATCH[2]))
done
dups=$(grep '^k[0-9]-' "$log" | sort | uniq -d | wc -l)
figure "aetaskd killed under load: serving again after $back ms; $sent calls made, $answered answered, $dups run twice"
check "the killed service serves again within 3 s ($back ms)" test "$back" -lt 3000
equal "it was restarted once, by Restart=on-failure" 1 "$(prop aetask@counter.service NRestarts)"
equal "every call answered across the crash" "$sent" "$answered"
equal "no call ran twice across the crash" 0 "$dups"
equal "the old workers are gone" "" "$(journalctl -q -u aetask@counter.service -o cat | grep -i 'timed out')"

echo "== restart storm"
# An administrator restarting in a loop, then crashes: systemd's default
# start limit (5 starts in 10 s) used to fail the service and both sockets
# here, removing /run/aetask/counter.sock until reset-failed.  Four pooled
# clients keep 4 checkouts each busy, 8 calls per checkout, every id checked.
for i in 1 2 3 4; do
        $LOAD --prefix="s$i" --seconds=15 --concurrency=4 --calls=8 --sleep-ms=20 unix:/run/aetask/counter.sock \
                >"/tmp/storm.$i.out" 2>"/tmp/storm.$i.err" &
        loads[$i]=$!
done
sleep 1
restarts=0
for r in $(seq 10); do
        systemctl restart aetask@counter.service && restarts=$((restarts + 1))
        sleep 0.5
done
kills=0
for k in $(seq 5); do
        systemctl kill -s SIGKILL --kill-whom=main aetask@counter.service && kills=$((kills + 1))
        sleep 1
done
storm_ok=0
for i in 1 2 3 4; do wait "${loads[$i]}" || storm_ok=1; done
sent=0 answered=0 lost=0 unanswered=0
for i in 1 2 3 4; do
        line=$(cat "/tmp/storm.$i.out")
        echo "client $i: $line"
        sed 's/^/  /' "/tmp/storm.$i.err"
        [[ "$line" =~ sent=([0-9]+)\ answered=([0-9]+)\ failed=([0-9]+)\ unanswered=([0-9]+) ]] || continue
        sent=$((sent + BASH_REMATCH[1])) answered=$((answered + BASH_REMATCH[2]))
        lost=$((lost + BASH_REMATCH[3])) unanswered=$((unanswered + BASH_REMATCH[4]))
done
ran=$(grep -c '^s[0-9]-' "$log")
dups=$(grep '^s[0-9]-' "$log" | sort | uniq -d | wc -l)
figure "restart storm: $restarts restarts 0.5 s apart, then $kills SIGKILLs of aetaskd 1 s apart; $sent calls made, $answered answered, $lost failed, $unanswered unanswered, $dups run twice; NRestarts $(prop aetask@counter.service NRestarts)"
equal "10 restarts, then 5 kills" "10 5" "$restarts $kills"
check "calls were made ($sent)" test "$sent" -gt 500
equal "every call answered through the storm" "$sent" "$answered"
equal "no call failed" 0 "$lost"
equal "the load clients were content" 0 "$storm_ok"
equal "no call ran twice" 0 "$dups"
equal "each call ran once" "$sent" "$ran"
equal "both sockets still active" "active active" "$(systemctl is-active aetask@counter.socket aetask-control@counter.socket | tr '\n' ' ' | sed 's/ $//')"
check "the socket files are still there" test -S /run/aetask/counter.sock -a -S /run/aetask/counter.control
equal "and the service answers" '"after-storm"' "$($CTL counter call record after-storm 2>&1)"

echo "== the pool's memory is bounded"
equal "the unit's memory limits (20% and 25% of this machine's memory)" \
        "$(( $(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) * 1024 / 5 / 4096 * 4096 ))" "$(prop aetask@counter.service MemoryHigh)"
equal "OOMPolicy=continue" continue "$(prop aetask@counter.service OOMPolicy)"
# A handler that leaks past the limit: the kernel kills its worker, the
# client learns so, and the service goes on.  Only where this systemd has a
# memory controller (a container on a host with cgroup v1 has none).
if [[ "$(prop aetask@counter.service MemoryCurrent)" =~ ^[0-9]+$ ]]; then
        systemctl set-property --runtime aetask@counter.service MemoryMax=96M MemoryHigh=infinity
        main_before=$(prop aetask@counter.service MainPID)
        out=$($CTL counter call grow 400 2>&1)
        equal "a worker past MemoryMax= is killed, and its client told" "aetaskctl: worker-died error: worker connection suddenly died" "$out"
        equal "the service goes on, same aetaskd" "active $main_before" "$(prop aetask@counter.service ActiveState) $(prop aetask@counter.service MainPID)"
        equal "the next call is answered" 10 "$($CTL counter call grow 10 2>&1)"
        systemctl revert aetask@counter.service >/dev/null 2>&1
else
        echo "SKIP MemoryMax= enforcement: this systemd has no memory controller (MemoryCurrent=$(prop aetask@counter.service MemoryCurrent))"
fi

echo "== configuration errors do not loop"
systemctl start aetask@no-such-handler.socket
$CTL --timeout=2 no-such-handler call x >/dev/null 2>&1
# The start may still be under way on a busy machine: its end is what counts.
for _ in $(seq 200); do
        [ "$(prop aetask@no-such-handler.service ActiveState)" = activating ] || break
        sleep 0.1
done
equal "a handler that cannot be loaded fails its service once (exit 6, not restarted)" "failed 0 6" \
        "$(prop aetask@no-such-handler.service ActiveState) $(prop aetask@no-such-handler.service NRestarts) $(prop aetask@no-such-handler.service ExecMainStatus)"
systemctl stop aetask@no-such-handler.socket aetask-control@no-such-handler.socket
systemctl reset-failed 'aetask@no-such-handler.*' 2>/dev/null
# Options the handler refuses: the start fails (before READY=1), the journal
# names the option, and no restart loop (exit 6, RestartPreventExitStatus=).
echo 'AETASK_ARGS="-o cost=99"' >/etc/aetask/bcrypt.conf
since=$(date '+%Y-%m-%d %H:%M:%S')
if systemctl start aetask@bcrypt.service 2>/dev/null; then started=yes; else started=no; fi
sleep 1
equal "systemctl start fails on -o cost=99" no "$started"
equal "bad handler options fail the service once (exit 6, not restarted)" "failed 0 6" \
        "$(prop aetask@bcrypt.service ActiveState) $(prop aetask@bcrypt.service NRestarts) $(prop aetask@bcrypt.service ExecMainStatus)"
journalctl --sync
msg=$(journalctl -u aetask@bcrypt.service --since "$since" -o cat 2>/dev/null | grep 'Invalid handler options')
check "the journal names the option: $msg" grep -q 'cost=99' <<<"$msg"
echo 'AETASK_ARGS="-o cost=4"' >/etc/aetask/bcrypt.conf
systemctl stop aetask@bcrypt.socket aetask-control@bcrypt.socket 2>/dev/null
systemctl reset-failed 'aetask@bcrypt.*' 'aetask-control@bcrypt.*' 2>/dev/null

echo "== reload under load"
systemctl start aetask@echo.service
main_before=$(prop aetask@echo.service MainPID)
$LOAD --prefix=h --seconds=3 --concurrency=4 --calls=8 --method=echo unix:/run/aetask/echo.sock >/tmp/reload.out 2>&1 &
bg=$!
sleep 0.5
reloads=0
for _ in 1 2 3; do systemctl reload aetask@echo.service && reloads=$((reloads + 1)); sleep 0.5; done
wait $bg
rc=$?
equal "systemctl reload three times succeeds" 3 "$reloads"
equal "no call failed across the reloads ($(cat /tmp/reload.out))" 0 "$rc"
equal "the same aetaskd serves on" "active $main_before" "$(prop aetask@echo.service ActiveState) $(prop aetask@echo.service MainPID)"
check "aetaskd logged the reloads" grep -q "Reloading: recycling" <<<"$(journalctl -q -u aetask@echo.service -o cat)"

echo "== stop"
$CTL echo call sleep 1 >/tmp/stop.out 2>&1 &
bg=$!
sleep 0.4
t0=$(now_ms)
systemctl stop aetask@echo.service
took=$(( $(now_ms) - t0 ))
wait $bg
equal "a call in progress finishes during the stop (drain)" null "$(cat /tmp/stop.out)"
check "stop waited for it (${took} ms)" test "$took" -ge 400
equal "no worker outlives the service" 0 "$(workers_of echo)"
figure "systemctl stop with one busy worker: $took ms"

echo 'AETASK_ARGS=--drain-timeout=1' >/etc/aetask/echo.conf
$CTL echo call sleep 30 >/tmp/drain.out 2>&1 &
bg=$!
sleep 0.8
t0=$(now_ms)
systemctl stop aetask@echo.service
took=$(( $(now_ms) - t0 ))
wait $bg
rc=$?
check "the drain limit (--drain-timeout=1 in /etc/aetask/echo.conf) ends the stop (${took} ms)" test "$took" -ge 900 -a "$took" -lt 5000
equal "the call cut off by the drain limit fails, and says so" "1 aetaskctl: worker-died error: worker connection suddenly died" "$rc $(cat /tmp/drain.out)"
check "aetaskd logged the drain limit" grep -q "Drain limit of 1.000 s reached" <<<"$(journalctl -q -u aetask@echo.service -o cat)"
equal "no worker left after the drain limit" 0 "$(workers_of echo)"
rm /etc/aetask/echo.conf
# The control socket is part of the worker socket (PartOf=): stopping the
# one stops both, else the control socket would listen on, and a connection
# to it start the service and with it the worker socket again.
systemctl stop aetask@echo.socket
equal "stopping aetask@echo.socket stops aetask-control@echo.socket" "inactive inactive" \
        "$(systemctl is-active aetask@echo.socket aetask-control@echo.socket | tr '\n' ' ' | sed 's/ $//')"
check "the socket files go with the sockets" test ! -e /run/aetask/echo.sock -a ! -e /run/aetask/echo.control
systemctl start aetask@echo.socket
equal "starting aetask@echo.socket starts both again (Wants=)" "active active" \
        "$(systemctl is-active aetask@echo.socket aetask-control@echo.socket | tr '\n' ' ' | sed 's/ $//')"
check "both socket files are back" test -S /run/aetask/echo.sock -a -S /run/aetask/echo.control
control_since=$(prop aetask-control@echo.socket ActiveEnterTimestampMonotonic)
systemctl restart aetask@echo.socket
equal "restarting aetask@echo.socket restarts both" "active active" \
        "$(systemctl is-active aetask@echo.socket aetask-control@echo.socket | tr '\n' ' ' | sed 's/ $//')"
check "the control socket was restarted too" test "$(prop aetask-control@echo.socket ActiveEnterTimestampMonotonic)" -gt "$control_since"
systemctl stop aetask@echo.socket
check "and both stop again" test ! -e /run/aetask/echo.sock -a ! -e /run/aetask/echo.control

echo "== hardening"
sa=$(systemd-analyze security --no-pager aetask@echo.service 2>&1)
echo "$sa" | grep -E '^✗' | sed 's/^/  /'
exposure=$(sed -n 's/.*Overall exposure level for aetask@echo.service: \([0-9.]*\).*/\1/p' <<<"$sa")
figure "systemd-analyze security aetask@echo.service: ${exposure:-?}"
check "exposure level ${exposure:-?} is at most 2.0" test "$(tenths "${exposure:-99}")" -le 20

echo "== every shipped handler runs under the hardened unit"
for so in "$B"/src/handlers/*.so; do
        name=$(basename "$so" .so)
        systemctl start "aetask@$name.socket"
        case $name in
        echo)
                equal "handler echo" 42 "$($CTL echo call echo 42 2>&1)" ;;
        bcrypt)
                hash=$($CTL bcrypt call hash secret 2>&1)
                check "handler bcrypt: hash with -o cost=4 from /etc/aetask/bcrypt.conf ($hash)" grep -q '^"\$2b\$04\$' <<<"$hash"
                equal "handler bcrypt: verify" true "$($CTL bcrypt call verify "$hash" secret 2>&1)" ;;
        sqlite)
                equal "handler sqlite: create" 0 "$($CTL sqlite call do 'create table t (x)' 2>&1)"
                equal "handler sqlite: insert" 1 "$($CTL sqlite call do 'insert into t values (?)' null 42 2>&1)"
                equal "handler sqlite: select" '[42]' "$($CTL sqlite call selectrow_array 'select x from t' 2>&1)"
                check "handler sqlite: the database is in the state directory" test -s /var/lib/aetask/sqlite/aetask.sqlite3
                out=$($CTL sqlite call do "ATTACH '/var/lib/aetask/sqlite/other.sqlite3' AS o" 2>&1)
                check "handler sqlite: ATTACH of another file is refused ($out)" grep -q "is not this handler's database" <<<"$out"
                check "handler sqlite: ATTACH created nothing" test ! -e /var/lib/aetask/sqlite/other.sqlite3
                # The unit hides the system's /dev/shm (PrivateDevices= alone bind-mounts it in):
                # a file put there is not in the service's view of it.
                touch /dev/shm/aetask-test-marker
                check "handler sqlite: the system's /dev/shm is hidden from the service" \
                        test ! -e "/proc/$(prop aetask@sqlite.service MainPID)/root/dev/shm/aetask-test-marker"
                rm -f /dev/shm/aetask-test-marker ;;
        *)
                # Setup runs before the method is looked up: this proves setup works.
                out=$($CTL "$name" call aetask_no_such_method 2>&1)
                check "handler $name: set up and answers ($out)" grep -q "unknown method" <<<"$out" ;;
        esac
        systemctl stop "aetask@$name.service" "aetask@$name.socket" "aetask-control@$name.socket"
done
equal "no handler failed its service" "" "$(systemctl list-units --failed --plain --no-legend 'aetask*')"
equal "the watchdog never fired" "" "$(journalctl -q -b -o cat | grep -i 'watchdog timeout')"

# For the reader of a failure: what aetask's units said.
[ "$failed" -gt 0 ] && journalctl -q -b --no-pager -o short-monotonic -u 'aetask*' >/results/journal.txt
echo "$passed passed, $failed failed" | tee /results/summary
