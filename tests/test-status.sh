#!/bin/bash
# aetaskd's control socket and `aetaskctl status` without systemd (--control),
# the NAME shorthand, the peer-credential check, and SIGTERM's drain: busy
# workers finish, the drain limit kills the rest, and no worker is left.
set -uo pipefail
dir=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
chmod 755 "$dir"

. "$(dirname "$0")/lib.sh"
start() {
        "$AETASKD" --listen "unix:$dir/t.sock" --control "unix:$dir/t.control" --handler echo "$@" &
        server=$!
        for _ in $(seq 100); do [ -S "$dir/t.control" ] && break; sleep 0.05; done
}

# Waits (up to 5 s: the sanitizer build under load is slow) until a worker
# is busy in a call, and prints its pid.
busy_worker() {
        local out
        for _ in $(seq 250); do
                out=$(ctl --json status t 2>/dev/null)
                if grep -q '"state":"busy"' <<<"$out"; then
                        sed -n 's/.*"workers":\[{"pid":\([0-9]*\),.*/\1/p' <<<"$out"
                        return
                fi
                sleep 0.02
        done
}
stop() { kill "$server"; wait "$server"; server=; rm -f "$dir/t.sock" "$dir/t.control"; }
ctl() { "$AETASKCTL" "$@"; }
# A process that exists and is no zombie (an orphan's reaper may be slow).
alive() { [ -e "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
export AETASK_RUNTIME_DIR=$dir

start --drain-timeout=1
out=$(ctl status "unix:$dir/t.control")
check_match "status header" "^echo: aetaskd pid $server, handler echo, up [0-9.]+ms" "$out"
check_match "status of an idle server" $'\nWorkers: 0 \\(0 busy, 0 idle\\) of at most 256, 128 per user; 0 calls served, 0 killed as hung\nCalls: 0 \\(0.0/s\\), duration p50 0us, p99 0us; errors: none\nWorkers spawned: 0; retired: none$' "$out"

check "NAME call shorthand" 5 "$(ctl t call echo 5)"
check "NAME call shorthand again" '"x"' "$(ctl t call echo x)"
"$AETASKCTL" t call sleep 1.5 >"$dir/sleep.out" &
bg=$!
sleep 0.5
out=$(ctl status t)
check_match "status NAME: one busy worker" $'\nWorkers: 1 \\(1 busy, 0 idle\\) of at most 256, 128 per user; 3 calls served, 0 killed as hung\n' "$out"
check_match "status NAME: workers per user" $'\nUSER +WORKERS +BUSY\nuid '"$(id -u)"$' +1 +1\n' "$out"
check_match "status NAME: the worker's row" $'\n +[0-9]+ +3 busy +'"$bg"' +'"$(id -u)"' sleep +[0-9]+ms +1 +[0-9]+ms +[0-9.]+[KMG] +-$' "$out"
out=$(ctl t status)
check_match "NAME status shorthand" "^echo: aetaskd pid $server" "$out"
out=$(ctl --json --connect "unix:$dir/t.control" status)
check_match "status --json" "\"alive\":1,\"busy\":1,\"idle\":0,\"max_workers\":256,\"max_workers_per_uid\":128,\"calls\":3,.*\"users\":\[\{\"uid\":$(id -u),\"workers\":1,\"busy\":1\}\],.*\"state\":\"busy\",\"client_pid\":$bg,.*\"method\":\"sleep\"" "$out"
wait $bg
check "the call answered" null "$(cat "$dir/sleep.out")"
sleep 0.1
check_match "calls served counts exited workers" "; 3 calls served," "$(ctl status t)"

# status --watch refreshes until Ctrl-C (SIGINT: a background job of a
# script ignores it, which aetaskctl's own handler overrides).
"$AETASKCTL" status --watch --interval 0.2 t >"$dir/watch.out" &
watcher=$!
sleep 1
kill -INT "$watcher"
wait "$watcher"
check "status --watch ends on Ctrl-C, exit 0" 0 "$?"
check_match "status --watch refreshed" "Every 0.2s: aetaskctl status unix:.*Every 0.2s: aetaskctl status unix:" "$(tr '\n' ' ' <"$dir/watch.out")"
check_match "status --watch shows the metrics" $'\nCalls: 3 \\([0-9.]+/s\\), duration p50 [0-9.]+[mu]?s, p99 [0-9.]+[mu]?s; errors: none\n' "$(cat "$dir/watch.out")"
# On a terminal (script(1) makes one): the screen cleared each refresh,
# and q typed ends it.
if command -v script >/dev/null; then
        (sleep 0.7; printf q) | timeout 10 script -qfec "$AETASKCTL status --watch --interval 0.2 t" /dev/null >"$dir/tty.out"
        check "status --watch on a terminal ends on q, exit 0" 0 "$?"
        check_match "status --watch on a terminal clears the screen" $'\033\\[H\033\\[2JEvery 0.2s: .*\\(q quits\\)' "$(cat "$dir/tty.out")"
else
        echo "skip status --watch on a terminal: no script(1)"
fi

out=$("$AETASKD" --listen "unix:$dir/g.sock" --handler echo --control-group no-such-group-here 2>&1); rc=$?
check "an unknown control group: usage" 2 "$rc"
check_match "an unknown control group says which" "Failed to find group no-such-group-here for --control-group" "$out"

out=$(ctl status 2>&1); rc=$?
check "status without a server: usage" 2 "$rc"
out=$(ctl status "unix:$dir/absent.control" 2>&1); rc=$?
check "status of an absent server fails" "1" "$rc"
check_match "status of an absent server says why" "cannot connect to unix:$dir/absent.control" "$out"

if [ "$(id -u)" = 0 ]; then
        # Another user may not enter the build tree (a clone in /root is
        # mode 0700): it runs a copy of aetaskctl and its library from $dir.
        mkdir "$dir/bin"
        # In a coverage build its counts would go to the build tree, which
        # that user cannot reach either: they go to a scratch folder.
        mkdir -m 1777 "$dir/gcov"
        cp "$AETASKCTL" "$dir/bin/aetaskctl"
        cp "$(ldd "$AETASKCTL" | sed -n 's/.*libaetask-sd\.so\.0 => \(.*\) (.*/\1/p')" "$dir/bin/"
        chmod -R a+rX "$dir/bin"
        as_user() {  # as_user SETPRIV_OPTIONS... -- AETASKCTL_ARGS...
                local opts=()
                while [ "$1" != -- ]; do opts+=("$1"); shift; done
                shift
                setpriv "${opts[@]}" env LD_LIBRARY_PATH="$dir/bin" GCOV_PREFIX="$dir/gcov" "$dir/bin/aetaskctl" "$@"
        }
        # A worker socket only root may open: call fails at once, with the
        # errno, as its own kind (not after the 30 s timeout).
        chmod 600 "$dir/t.sock"
        t0=$(date +%s%N)
        out=$(AETASK_RUNTIME_DIR="$dir" as_user --reuid=65534 --regid=65534 --clear-groups -- t call echo hi 2>&1); rc=$?
        ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        check "call on a socket nobody may open: exit" 1 "$rc"
        check "call on a socket nobody may open: error" "aetaskctl: connect error: connecting to unix:$dir/t.sock failed: Permission denied" "$out"
        if [ "$ms" -lt 1000 ]; then pass; else fail "call on a socket nobody may open took $ms ms"; fi
        chmod 666 "$dir/t.sock"
        # The socket file lets everyone in: the server's own check refuses.
        chmod 666 "$dir/t.control"
        out=$(as_user --reuid=65534 --regid=65534 --clear-groups -- status t 2>&1); rc=$?
        check "status refused to another user: exit" 1 "$rc"
        check "status refused to another user: error" "aetaskctl: io.aetask.PermissionDenied: only root, the server's user and its control group may ask" "$out"
        stop
        start --control-group=4321
        chmod 666 "$dir/t.control"
        out=$(as_user --reuid=65534 --regid=65534 --groups=4321 -- status t 2>&1)
        check_match "status allowed to the control group (supplementary)" "^echo: aetaskd pid $server" "$out"
        out=$(as_user --reuid=65534 --regid=4321 --clear-groups -- status t 2>&1)
        check_match "status allowed to the control group (primary)" "^echo: aetaskd pid $server" "$out"
        # The group by name, as units write it: any group of this system.
        read -r group gid < <(getent group | awk -F: '$3 > 0 && $3 < 65534 { print $1, $3; exit }')
        stop
        start --control-group="$group"
        chmod 666 "$dir/t.control"
        out=$(as_user --reuid=65534 --regid="$gid" --clear-groups -- status t 2>&1)
        check_match "status allowed to the control group by name ($group)" "^echo: aetaskd pid $server" "$out"
        out=$(as_user --reuid=65534 --regid=65534 --clear-groups -- status t 2>&1)
        check_match "and refused outside it" "PermissionDenied" "$out"
fi

# SIGTERM: a busy worker finishes its call; the server exits after it.
"$AETASKCTL" t call sleep 0.6 >"$dir/drain.out" 2>&1 &
bg=$!
busy_worker >/dev/null
kill -TERM "$server"
wait "$server"; rc=$?; server=
wait $bg
check "SIGTERM: the busy worker's call is answered" null "$(cat "$dir/drain.out")"
check "SIGTERM: the server exits cleanly" 0 "$rc"
rm -f "$dir/t.sock" "$dir/t.control"

# The drain limit: a call longer than it is cut off, and no worker is left.
start --drain-timeout=0.5
"$AETASKCTL" t call sleep 20 >"$dir/drain.out" 2>&1 &
bg=$!
worker=$(busy_worker)
t0=$(date +%s%N)
kill -TERM "$server"
wait "$server"; rc=$?; server=
took=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $bg
check_match "drain limit: the server exits after about 0.5 s" "^(4[5-9][0-9]|[5-9][0-9][0-9]|1[0-9][0-9][0-9])$" "$took"
check "drain limit: the server's exit status" 0 "$rc"
check "drain limit: the call fails" "aetaskctl: worker-died error: worker connection suddenly died" "$(cat "$dir/drain.out")"
check "drain limit: the worker is gone" "gone" "$([ -n "$worker" ] && ! alive "$worker" && echo gone)"

# The server dies: a busy worker still answers its call.  (That idle pooled
# workers then retire, and a crashed service restarts at once, is checked in
# tests/systemd/driver.sh, with a client that keeps connections open.)
start
"$AETASKCTL" t call sleep 0.6 >"$dir/orphan.out" 2>&1 &
bg=$!
worker=$(busy_worker)
kill -KILL "$server"
wait "$server" 2>/dev/null; server=
wait $bg
check "server killed: the busy worker's call is still answered" null "$(cat "$dir/orphan.out")"
for _ in $(seq 50); do alive "$worker" || break; sleep 0.02; done
check "server killed: its worker ends after the call" "gone" "$([ -n "$worker" ] && ! alive "$worker" && echo gone)"
rm -f "$dir/t.sock" "$dir/t.control"

# The server dies and nobody enforces its drain limit: the busy worker does,
# itself (in whole seconds, rounded up: 1 s here), rather than run on.
start --drain-timeout=0.5
"$AETASKCTL" t call sleep 20 >"$dir/orphan.out" 2>&1 &
bg=$!
worker=$(busy_worker)
t0=$(date +%s%N)
kill -KILL "$server"
wait "$server" 2>/dev/null; server=
wait $bg
took=$(( ($(date +%s%N) - t0) / 1000000 ))
check "server killed: the orphan past the drain limit fails its call" "aetaskctl: worker-died error: worker connection suddenly died" "$(cat "$dir/orphan.out")"
check_match "server killed: the orphan ends after the drain limit (1 s)" "^(9[5-9][0-9]|1[0-9][0-9][0-9]|2[0-4][0-9][0-9])$" "$took"
check "server killed: the orphan is gone" "gone" "$(for _ in $(seq 50); do alive "$worker" || break; sleep 0.02; done; alive "$worker" || echo gone)"
rm -f "$dir/t.sock" "$dir/t.control"

summary
