#!/bin/bash
# aetaskctl against a real aetaskd: results on stdout, errors on stderr with
# a non-zero exit, arguments parsed as JSON or taken as strings.
set -uo pipefail
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
"$AETASKD" --listen "unix:$dir/t.sock" --handler echo &
server=$!
for _ in $(seq 100); do [ -S "$dir/t.sock" ] && break; sleep 0.05; done

passed=0 failed=0
check() {  # check NAME EXPECTED ACTUAL
        if [ "$2" == "$3" ]; then passed=$((passed + 1)); else
                failed=$((failed + 1)); echo "FAIL $1: expected [$2], got [$3]"; fi
}
ctl() { "$AETASKCTL" --connect "unix:$dir/t.sock" "$@"; }

check unicode '"héllo"' "$(ctl call echo '"héllo"')"
check four-byte '"𝇚"' "$(ctl call echo '"\ud834\uddda"')"
check catch-all '[1,"word",{"a":[true,null]}]' "$(ctl call - 1 word '{"a":[true,null]}')"
out=$(ctl call fail 'it broke' 2>&1); rc=$?
check fail-exit 1 "$rc"
check fail-message 'aetaskctl: handler error: it broke' "$out"
out=$(ctl call nosuchmethod 2>&1); rc=$?
check unknown-exit 1 "$rc"
check unknown-message "aetaskctl: handler error: unknown method 'nosuchmethod'" "$out"
out=$("$AETASKCTL" --connect "unix:$dir/absent.sock" --timeout 0.3 call echo 1 2>&1); rc=$?
check absent-exit 1 "$rc"
check absent-message "aetaskctl: timeout error: timed out after 0.3 seconds (no worker: connecting to unix:$dir/absent.sock failed: No such file or directory)" "$out"
"$AETASKCTL" --bogus >/dev/null 2>&1; check usage-exit 2 $?
# A timeout that is no number of seconds (NaN, which was accepted, or one
# whose microseconds would not fit) is a usage error.
for t in nan inf 1e99 -1; do
        out=$("$AETASKCTL" --connect "unix:$dir/absent.sock" --timeout "$t" call echo 1 2>&1); rc=$?
        check "timeout-$t-exit" 2 $rc
        check "timeout-$t-message" "aetaskctl: invalid --timeout: $t: expected seconds, more than 0 and at most 1000000000 (fractions allowed)" "$out"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
