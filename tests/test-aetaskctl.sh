#!/bin/bash
# aetaskctl against a real aetaskd: results on stdout, errors on stderr with
# a non-zero exit, arguments parsed as JSON or taken as strings.
set -uo pipefail
dir=$(mktemp -d)
trap 'kill $server 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
"$AETASKD" --listen "unix:$dir/t.sock" --control "unix:$dir/t.control" --handler echo &
server=$!
for _ in $(seq 100); do [ -S "$dir/t.sock" ] && [ -S "$dir/t.control" ] && break; sleep 0.05; done

. "$(dirname "$0")/lib.sh"
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
out=$(ctl call echo "$(printf 'a\xffb')" 2>&1); rc=$?
check not-utf8-exit 2 "$rc"
check not-utf8-message "aetaskctl: argument 1 is not valid UTF-8" "$out"
out=$("$AETASKCTL" --bogus 2>&1); rc=$?
check usage-exit 2 "$rc"
check usage-message "aetaskctl: unrecognized option '--bogus'
Try 'aetaskctl --help' for more information." "$out"

# A first word that is no method name goes to the catch-all, and a handler
# without one says so; aetaskctl says why ($1: the test handlers' folder).
"$AETASKD" --listen "unix:$dir/gate.sock" --handler gate --handler-dir "$1" &
gate=$!
for _ in $(seq 100); do [ -S "$dir/gate.sock" ] && break; sleep 0.05; done
out=$("$AETASKCTL" --connect "unix:$dir/gate.sock" call say-hello bob 2>&1); rc=$?
kill $gate; wait $gate
check not-a-method-exit 1 "$rc"
check not-a-method-message 'aetaskctl: handler error: the handler takes no calls without a method name
aetaskctl: "say-hello" is not a method name (1 to 128 ASCII letters, digits and underscores): it went to the catch-all as the first argument' "$out"
# A timeout that is no number of seconds (NaN, which was accepted, or one
# whose microseconds would not fit) is a usage error.
for t in nan inf 1e99 -1; do
        out=$("$AETASKCTL" --connect "unix:$dir/absent.sock" --timeout "$t" call echo 1 2>&1); rc=$?
        check "timeout-$t-exit" 2 $rc
        check "timeout-$t-message" "aetaskctl: invalid --timeout: $t: expected seconds, more than 0 and at most 1000000000 (fractions allowed)" "$out"
done

# Help, version and usage errors: exit 0 for what was asked, 2 for a
# command line that cannot be run, each with a message that says why.
out=$("$AETASKCTL" --help); rc=$?
check help-exit 0 "$rc"
check help-first-line "Usage: aetaskctl [OPTIONS...] [NAME] COMMAND ..." "$(head -1 <<<"$out")"
check version "aetaskctl $(sed -n "s/^ *version : '\(.*\)',/\1/p" "$(dirname "$0")/../meson.build")" "$("$AETASKCTL" --version)"
out=$("$AETASKCTL" 2>/dev/null); rc=$?
check no-command-exit 2 "$rc"
check no-command-help-on-stderr "" "$out"
out=$("$AETASKCTL" --timeout soon call echo 1 2>&1); rc=$?
check bad-timeout "2 aetaskctl: invalid --timeout: soon: expected seconds, more than 0 and at most 1000000000 (fractions allowed)" "$rc $out"
out=$("$AETASKCTL" somename 2>&1); rc=$?
check name-without-command "2 aetaskctl: no command after 'somename', see --help" "$rc $out"
out=$("$AETASKCTL" somename frobnicate 2>&1); rc=$?
check unknown-command "2 aetaskctl: unknown command 'frobnicate', see --help" "$rc $out"
out=$("$AETASKCTL" call echo 1 2>&1); rc=$?
check call-without-server "2 aetaskctl: no server given: use --connect ADDRESS or aetaskctl NAME call" "$rc $out"
out=$("$AETASKCTL" --connect "nonsense:x" call echo 1 2>&1); rc=$?
check call-bad-address "2" "$rc"
[[ "$out" == "aetaskctl: cannot use nonsense:x: "* ]]; check call-bad-address-message 0 $?
out=$("$AETASKCTL" status "nonsense:x" 2>&1); rc=$?
check status-bad-address "2" "$rc"
out=$("$AETASKCTL" status "unix:$dir/t.control" extra 2>&1); rc=$?
check status-two-names "2 aetaskctl: status takes one NAME or ADDRESS" "$rc $out"
# status sent to a worker socket: its Varlink error gives it away.
out=$("$AETASKCTL" status "unix:$dir/t.sock" 2>&1); rc=$?
check status-of-a-worker-socket "1" "$rc"
[[ "$out" == "aetaskctl: unix:$dir/t.sock is a worker socket, not a control socket "* ]]; check status-of-a-worker-socket-message 0 $?

# Options anywhere on the line (getopt's permutation, as systemctl), up to
# call's METHOD: after it, and after "--", every word is an argument.
export AETASK_RUNTIME_DIR=$dir   # NAME t: unix:$dir/t.sock and t.control
check option-after-call '"x"' "$("$AETASKCTL" t call --timeout 5 echo x)"
check option-after-name '"x"' "$("$AETASKCTL" t --raw call echo '"x"' | sed 's/.*/"&"/')"
check option-last-of-status '{"name":"echo",' "$("$AETASKCTL" status t -j | cut -c1-15)"
check option-between-name-and-status '{"name":"echo",' "$("$AETASKCTL" t -j status | cut -c1-15)"
check connect-option-last '{"name":"echo",' "$("$AETASKCTL" status -j --connect "unix:$dir/t.control" | cut -c1-15)"
check negative-number-after-method -1 "$(ctl call echo -1)"
check negative-number-for-the-catch-all '[-1,-2.5]' "$(ctl call -1 -2.5)"
check dash-for-the-catch-all '[-1]' "$(ctl call - -1)"
check option-words-after-method '["-j","--timeout","x"]' "$(ctl call - -j --timeout x)"
check double-dash-ends-options '["--raw"]' "$(ctl call -- --raw)"
check double-dash-then-method '"-j"' "$(ctl -- call echo -j)"
out=$("$AETASKCTL" t call --bogus echo 1 2>&1); rc=$?
check unknown-option-before-method "2 aetaskctl: unrecognized option '--bogus'
Try 'aetaskctl --help' for more information." "$rc $out"
out=$("$AETASKCTL" status t extra -j 2>&1); rc=$?
check status-two-names-with-option "2 aetaskctl: status takes one NAME or ADDRESS" "$rc $out"
unset AETASK_RUNTIME_DIR

# --raw: a string result as its bytes, unquoted and unescaped (as jq -r);
# anything else as JSON.
check raw-string 'a "quoted" \ line/' "$(ctl -r call echo '"a \"quoted\" \\ line/"')"
check raw-multiline $'one\ntwo' "$(ctl call --raw echo '"one\ntwo"')"
check raw-nul 'a\0b' "$(ctl -r call echo '"a\u0000b"' | od -An -c | tr -d ' \n' | sed 's/\\n$//')"
check raw-number 42 "$(ctl -r call echo 42)"
check raw-array '["a",1]' "$(ctl -r call - a 1)"
check raw-null null "$(ctl --raw call echo null)"
check not-raw '"a\"b"' "$(ctl call echo 'a"b')"

summary
