#!/bin/bash
# SIGHUP recycles every worker with no failed call: a real aetaskd under
# load from a libaetask-sd client (aetask-load, checkouts of 8 calls on 4
# lanes), SIGHUP sent five times; every call must be answered, the server
# must go on, and the workers alive before a SIGHUP must be gone soon after
# (idle ones at once, busy ones after their checkout).
# Usage: test-reload.sh AETASK_LOAD
set -uo pipefail
load=$1
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"

"$AETASKD" --listen "unix:$dir/s.sock" --handler echo --name reload-test 2>"$dir/server.log" &
server=$!
pids+=($server)
for _ in $(seq 100); do [ -S "$dir/s.sock" ] && break; sleep 0.05; done

timeout 20 "$load" --seconds=4 --concurrency=4 --calls=8 --method=echo --prefix=r "unix:$dir/s.sock" >"$dir/load.out" 2>&1 &
client=$!
pids+=($client)
sleep 0.5
recycled_all=yes
for i in 1 2 3 4 5; do
        before=$(pgrep -P "$server" | sort)
        kill -HUP "$server"
        sleep 0.5
        # The workers of before the SIGHUP are gone (or zombies being reaped).
        for p in $before; do
                if [ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
                        recycled_all="no: worker $p ($(tr -d '\0' <"/proc/$p/cmdline" 2>/dev/null)) outlived SIGHUP $i"
                fi
        done
done
wait $client
rc=$?
out=$(cat "$dir/load.out")
echo "load: $out"
check "every call answered, none failed (exit 0)" 0 "$rc"
check "failed=0" 1 "$(grep -c ' failed=0 ' <<<"$out ")"
check "the server still runs" 0 "$(kill -0 "$server" 2>/dev/null; echo $?)"
check "workers from before each SIGHUP retired" yes "$recycled_all"
check "five reloads logged" 5 "$(grep -c 'Reloading: recycling' "$dir/server.log")"
check "a new call after the reloads" 42 "$("$AETASKCTL" --connect "unix:$dir/s.sock" call echo 42)"

summary
