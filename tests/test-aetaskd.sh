#!/bin/bash
# aetaskd as a program: socket activation with a real LISTEN_FDS hand-over
# (systemd-socket-activate), process titles in ps, usage errors, handler
# modules it refuses.
set -uo pipefail
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
. "$(dirname "$0")/lib.sh"
wait_for_socket() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }

# Socket activation: systemd-socket-activate listens, and starts aetaskd on
# the first connection with the socket in LISTEN_FDS, as systemd does.
if command -v systemd-socket-activate >/dev/null; then
        systemd-socket-activate -E AETASK_HANDLER_DIR -l "$dir/activated.sock" "$AETASKD" --handler echo 2>"$dir/activate.log" &
        pids+=($!)
        wait_for_socket "$dir/activated.sock"
        check activated-call '"via LISTEN_FDS"' "$("$AETASKCTL" --connect "unix:$dir/activated.sock" call echo '"via LISTEN_FDS"')"
else
        echo "SKIP activated-call: systemd-socket-activate not installed"
fi

# Starts aetaskd on $dir/NAME.sock with ARGS and a `sleep 1` call in
# flight, so that it has a worker; its pid in $server.
serve_busy() {  # serve_busy NAME ARGS...
        local name=$1
        shift
        "$AETASKD" --listen "unix:$dir/$name.sock" --handler echo "$@" 2>"$dir/$name.log" &
        server=$!
        pids+=($server)
        wait_for_socket "$dir/$name.sock"
        "$AETASKCTL" --connect "unix:$dir/$name.sock" call sleep 1 >/dev/null &
        pids+=($!)
        sleep 0.3
}

# Process titles: the server and each worker with its number.
serve_busy named --name demo-pool
check server-title "demo-pool: server" "$(ps -o args= -p "$server")"
worker=$(pgrep -P "$server" | head -1)
check worker-title "demo-pool: worker 1" "$(ps -o args= -p "$worker")"

# Workers run at SCHED_BATCH (3, /proc/PID/stat's 41st field), the server
# at the normal policy (0); with --worker-scheduling=inherit, workers keep
# the server's.
policy_of() { local s; s=$(<"/proc/$1/stat"); s=${s##*) }; set -- $s; echo "${39}"; }
check worker-scheduling-batch 3 "$(policy_of "$worker")"
check server-scheduling-normal 0 "$(policy_of "$server")"
serve_busy inherit --worker-scheduling=inherit
check worker-scheduling-inherit 0 "$(policy_of "$(pgrep -P "$server" | head -1)")"

# Usage errors exit 2 with a message.
"$AETASKD" --handler echo >/dev/null 2>"$dir/usage.log"; check no-socket-exit 2 $?
grep -q "No socket to serve" "$dir/usage.log"; check no-socket-message 0 $?
"$AETASKD" --listen "unix:$dir/x.sock" >/dev/null 2>&1; check no-handler-exit 2 $?
"$AETASKD" --listen "unix:$dir/y.sock" --handler no-such-handler 2>"$dir/nohandler.log"; check missing-handler-exit 6 $?
grep -q "Failed to load handler 'no-such-handler'" "$dir/nohandler.log"; check missing-handler-message 0 $?
# Modules that load but are no handler this aetaskd can run ($1: tests/handlers).
"$AETASKD" --listen "unix:$dir/z.sock" --handler-dir "$1" --handler no-symbol 2>"$dir/nosymbol.log"; check no-symbol-exit 6 $?
check no-symbol-message "aetaskd: Failed to load handler 'no-symbol': $1/no-symbol.so does not export aetask_handler_module" \
        "$(head -1 "$dir/nosymbol.log")"
"$AETASKD" --listen "unix:$dir/z.sock" --handler-dir "$1" --handler wrong-abi 2>"$dir/wrongabi.log"; check wrong-abi-exit 6 $?
check wrong-abi-message "aetaskd: Failed to load handler 'wrong-abi': ABI version 3, expected 1 to 2" "$(head -1 "$dir/wrongabi.log")"
# A file in the way is left alone, and said so.
echo precious >"$dir/file"
out=$("$AETASKD" --handler echo --listen "unix:$dir/file" 2>&1); rc=$?
check file-in-the-way-exit 1 "$rc"
check file-in-the-way-message "aetaskd: Failed to listen on unix:$dir/file: the path exists and is not a socket" "$out"
check file-in-the-way-kept precious "$(cat "$dir/file")"
out=$("$AETASKD" --bogus 2>&1); rc=$?
check bad-option-exit 2 "$rc"
check bad-option-message "aetaskd: unrecognized option '--bogus'
Try 'aetaskd --help' for more information." "$out"
for bad in "--max-workers=0" "--max-workers=65537" "--max-workers-per-uid=0" "--max-workers-per-uid=65537" "--max-workers-per-uid=x"; do
        "$AETASKD" --handler echo "$bad" >/dev/null 2>&1; check "out-of-range $bad" 2 $?
done

# Numbers out of range are usage errors, not values that wrap (a
# --max-message-size of 2^64-1 became 0: every call MessageTooLarge).
# timeout: before the check, aetaskd started and served.
usage_error() {  # usage_error NAME EXPECTED-MESSAGE ARGS...
        local name=$1 message=$2
        shift 2
        timeout 5 "$AETASKD" --handler echo --listen "unix:$dir/$name.sock" "$@" >/dev/null 2>"$dir/$name.log"
        check "$name-exit" 2 $?
        grep -qF -- "$message" "$dir/$name.log"; check "$name-message" 0 $?
}
usage_error message-size-wraps "Invalid --max-message-size: 18446744073709551615: expected an integer from 64 to 1073741824" \
        --max-message-size 18446744073709551615
usage_error worker-scheduling "Invalid --worker-scheduling 'fast': expected batch or inherit" --worker-scheduling fast
usage_error message-size-negative "Invalid --max-message-size: -1" --max-message-size -1
usage_error workers-wrap "Invalid --max-workers: 4294967297: expected an integer from 1 to 65536" --max-workers 4294967297
usage_error hung-timeout-nan "Invalid --hung-timeout: nan" --hung-timeout nan
usage_error drain-timeout-inf "Invalid --drain-timeout: inf" --drain-timeout inf
usage_error group-wraps "Failed to find group 4294967295 for --control-group" --control-group 4294967295
# The control socket tells callers apart by peer credentials: no TCP.
usage_error control-tcp "Refusing tcp:127.0.0.1:0 as the control socket: it must be a unix socket" \
        --control tcp:127.0.0.1:0
# Nor do allow lists go with TCP.
usage_error allow-tcp "Refusing to serve a TCP socket with --allow-user or --allow-group" \
        --allow-user root --listen tcp:127.0.0.1:0
usage_error allow-unknown-user "Failed to find user no-such-user-here for --allow-user" --allow-user no-such-user-here
usage_error allow-unknown-group "Failed to find group no-such-group-here for --allow-group" --allow-group no-such-group-here
usage_error log-level-bogus "Invalid --log-level: loud: expected emerg, alert, crit, err, warning, notice, info, debug or 0 to 7" \
        --log-level loud
usage_error call-log-level-range "Invalid --call-log-level: 8: expected emerg" --call-log-level 8
usage_error spare-workers-bogus "Invalid --spare-workers: many: expected an integer from 0 to 65536" --spare-workers many
usage_error option-without-value "Invalid --option, expected KEY=VALUE: cost" -o cost
usage_error listen-bogus "Invalid address 'nowhere': expected unix:/PATH, unix:@NAME or tcp:HOST:PORT" --listen nowhere
"$AETASKD" --version >"$dir/version.out"; check version-exit 0 $?
check version-output 1 "$(grep -cE '^aetaskd [0-9]+\.[0-9]+\.[0-9]+$' "$dir/version.out")"

# The server's options, each seen in what it does.
serve() {  # serve NAME ARGS...: an echo server on $dir/NAME.sock, its stderr in $dir/NAME.log
        local name=$1
        shift
        "$AETASKD" --handler echo --listen "unix:$dir/$name.sock" "$@" 2>"$dir/$name.log" &
        pids+=($!)
        wait_for_socket "$dir/$name.sock"
}
ctl_on() { local name=$1; shift; "$AETASKCTL" --connect "unix:$dir/$name.sock" "$@" 2>&1; }
serve hung --hung-timeout=0.3
check hung-timeout "aetaskctl: worker-died error: worker connection suddenly died" "$(ctl_on hung call sleep 3)"
grep -q "killed as hung: a call ran longer than 0.300 s" "$dir/hung.log"; check hung-timeout-logged 0 $?
serve small --max-message-size=200
check max-message-size "aetaskctl: protocol error: worker reported io.aetask.MessageTooLarge: message exceeds the size limit" \
        "$(ctl_on small call echo "\"$(printf 'x%.0s' $(seq 300))\"")"
# Root is in group root (gid 0): allowed; the allow list is checked.
serve group --allow-group=root
check allow-group-root 7 "$(ctl_on group call echo 7)"
# At --log-level=err nothing of a normal run is said; at info a worker's
# calls are told, one line each, with --call-log-level=info.
serve quiet --log-level=err --call-log-level=info
check quiet-call 1 "$(ctl_on quiet call echo 1)"
check quiet-log "" "$(cat "$dir/quiet.log")"
serve told --log-level=info --call-log-level=info
check told-call 2 "$(ctl_on told call echo 2)"
sleep 0.2
check told-call-logged 1 "$(grep -c "echo answered" "$dir/told.log")"

# Handler options are checked at start: a bad value or an unknown key is
# "not configured" (6), before READY=1, with the option named; good ones serve.
not_configured() {  # not_configured NAME EXPECTED-MESSAGE HANDLER ARGS...
        local name=$1 message=$2 handler=$3
        shift 3
        timeout 5 "$AETASKD" --handler "$handler" --listen "unix:$dir/$name.sock" "$@" \
                >/dev/null 2>"$dir/$name.log"
        check "$name-exit" 6 $?
        grep -qF -- "$message" "$dir/$name.log"; check "$name-message" 0 $?
}
not_configured bcrypt-cost "Invalid handler options: invalid option cost=99: expected an integer from 4 to 31" \
        bcrypt -o cost=99
not_configured bcrypt-unknown "Invalid handler options: unknown option cots: this handler takes cost" \
        bcrypt -o cost=5 -o cots=12
not_configured sqlite-unknown "unknown option databse: this handler takes database, journal_mode, busy_timeout" \
        sqlite -o databse=/tmp/x.sqlite3
not_configured sqlite-journal-mode "invalid option journal_mode=fast" sqlite -o journal_mode=fast
not_configured sqlite-max-rows "invalid option max_rows=-1" sqlite -o max_rows=-1
not_configured sqlite-attach "invalid option attach=/ok:relative/path: expected absolute paths" sqlite -o attach=/ok:relative/path
"$AETASKD" --handler bcrypt --listen "unix:$dir/good.sock" -o cost=4 2>"$dir/good.log" &
pids+=($!)
wait_for_socket "$dir/good.sock"
check bcrypt-good-options 1 "$("$AETASKCTL" --connect "unix:$dir/good.sock" call verify \
        "$("$AETASKCTL" --connect "unix:$dir/good.sock" call hash pw | tr -d '"')" pw | grep -c true)"

summary
