#!/bin/bash
# The seed's two synopses as shipped examples: each with a server of its own,
# and each against a running aetaskd given by address (as a unit's socket
# would be); the example handler module with a general interface; and
# verify-daemon, its line protocol, its limits and its cancel on hang-up.
# Usage: test-examples.sh HASH_PASSWORD SQLITE_SYNOPSIS EXAMPLES_BUILD_DIR
set -uo pipefail
hash_password=$1 sqlite_synopsis=$2 example_modules=$3
dir=$(mktemp -d)
servers=()
trap 'for p in "${servers[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$dir"' EXIT

. "$(dirname "$0")/lib.sh"
serve() {  # serve SOCKET HANDLER OPTIONS...
        local socket=$1 handler=$2
        shift 2
        "$AETASKD" --listen "unix:$socket" --handler "$handler" "$@" &
        servers+=($!)
        for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
}

# With servers of their own.
out=$("$hash_password" 2>&1); rc=$?
check hash-password-exit 0 "$rc"
check_match hash-password-output $'^Hashed password is \\$2b\\$10\\$[./A-Za-z0-9]{53}\nVerify result is 1$' "$out"

out=$("$sqlite_synopsis" 2>&1); rc=$?
check sqlite-synopsis-exit 0 "$rc"
check sqlite-synopsis-output 'username: jimmy, email: ' "$out"

# Against running servers, with handler options.
serve "$dir/bcrypt.sock" bcrypt -o cost=4
out=$("$hash_password" "unix:$dir/bcrypt.sock" 2>&1); rc=$?
check hash-password-address-exit 0 "$rc"
check_match hash-password-address-output $'^Hashed password is \\$2b\\$04\\$[./A-Za-z0-9]{53}\nVerify result is 1$' "$out"

serve "$dir/sqlite.sock" sqlite -o "database=$dir/junk.sqlite3"
for run in first second; do
        out=$("$sqlite_synopsis" "unix:$dir/sqlite.sock" 2>&1); rc=$?
        check "sqlite-synopsis-address-$run-exit" 0 "$rc"
        check "sqlite-synopsis-address-$run-output" 'username: jimmy, email: ' "$out"
done

# The greeter: one function for every call, named or not.
serve "$dir/greeter.sock" greeter --handler-dir "$example_modules"
greet() { "$AETASKCTL" --connect "unix:$dir/greeter.sock" call "$@"; }
check_match greeter-named '^"hello, world, from PID [0-9]+"$' "$(greet hello world)"
check_match greeter-any-name '^"bonjour, from PID [0-9]+"$' "$(greet bonjour)"
check_match greeter-anonymous '^"world, from PID [0-9]+"$' "$(greet - world)"

# No server at that address: an error and a failure exit, not a hang (the
# checkout's timeout is 5 seconds, as in the seed).
out=$(timeout 30 "$hash_password" "unix:$dir/absent.sock" 2>&1); rc=$?
check hash-password-absent-exit 1 "$rc"
check hash-password-absent-message "timeout error: timed out after 5 seconds (no worker: connecting to unix:$dir/absent.sock failed: No such file or directory)" "$out"

# verify-daemon, against a bcrypt server; its requests as a requester
# would send them, with the example requester.
verify_daemon=$example_modules/verify-daemon
ask() {  # ask SOCKET LINE...: the replies, sorted (they come as their answers do)
        "$example_modules/verify-request" "$@" | sort
}
stat_of() {  # stat_of NAME STATS_REPLY
        [[ "$2" =~ [[:space:]]$1=([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}
# Polls the stats until nothing is outstanding; prints the last reply.
settled_stats() {
        local out
        for _ in $(seq 100); do
                out=$(ask "$1" stats)
                [ "$(stat_of outstanding "$out")" = 0 ] && break
                sleep 0.1
        done
        echo "$out"
}
verify_daemons=()
start_verify_daemon() {  # start_verify_daemon SOCKET LOG OPTIONS...
        local socket=$1 log=$2
        shift 2
        "$verify_daemon" --listen "$socket" "$@" 2>"$log" &
        verify_daemons+=($!)
        servers+=($!)
        for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.05; done
}

# The protocol, limits and errors.
start_verify_daemon "$dir/verify.sock" "$dir/verify.log" --connect "unix:$dir/bcrypt.sock" \
        --max-outstanding 2 --max-connections 2
v=$dir/verify.sock
out=$(ask "$v" "hash two words")
check_match verify-daemon-hash '^1 ok \$2b\$04\$[./A-Za-z0-9]{53}$' "$out"
hash=${out#1 ok }
check verify-daemon-verify-true "1 ok true" "$(ask "$v" "verify $hash two words")"
check verify-daemon-verify-false "1 ok false" "$(ask "$v" "verify $hash two")"
check verify-daemon-handler-error "1 error handler verify: malformed bcrypt hash: 7 characters long instead of 60" \
        "$(ask "$v" "verify \$2b\$04\$ x")"
usage='error usage: hash PASSWORD | verify HASH PASSWORD | stats'
check verify-daemon-malformed "1 $usage
2 $usage
3 $usage
4 $usage" "$(ask "$v" "bogus" "hash" "verify $hash" "stats now")"
check verify-daemon-busy "1 ok true
2 ok true
3 error busy 2 requests outstanding on this connection" "$(ask "$v" "verify $hash two words" "verify $hash two words" "verify $hash two words")"
# A line too long: an error, and the connection is closed (stats unanswered).
check verify-daemon-too-long "1 error too-long a line is at most 1024 bytes" \
        "$(ask "$v" "hash $(printf 'x%.0s' $(seq 1100))" stats)"
# A third connection while two are open: refused.
hold() {  # hold SOCKET FIFO: a connection kept open for 3 s, once its stats reply is in FIFO
        perl -MIO::Socket::UNIX -e '
                my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $ARGV[0]) or die;
                print $s "stats\n"; my $l = <$s>; open(my $f, ">", $ARGV[1]); print $f $l; close $f;
                sleep 3;' "$@" &
}
mkfifo "$dir/hold1" "$dir/hold2"
hold "$v" "$dir/hold1"; held1=$!
read -r hold_reply <"$dir/hold1"
hold "$v" "$dir/hold2"; held2=$!
read -r hold_reply <"$dir/hold2"
check_match verify-daemon-held-connections '^1 ok connections=2 ' "$hold_reply"
check verify-daemon-connection-cap "0 error busy too many connections" "$(ask "$v" stats)"
kill "$held1" "$held2" 2>/dev/null; wait "$held1" "$held2" 2>/dev/null
out=$(settled_stats "$v")
check verify-daemon-stats "answered=5 failed=1 cancelled=0 busy=1 refused=1" \
        "$(for k in answered failed cancelled busy refused; do printf '%s=%s ' $k "$(stat_of $k "$out")"; done | sed 's/ $//')"

# A requester that hangs up with calls outstanding: one worker at most and a
# slow hash, so that one call is in a worker and two wait for it.  All three
# are cancelled (their slots dropped), each request freed once (a sanitizer
# build checks that), and the pool serves the next request.
serve "$dir/slow.sock" bcrypt -o cost=13
start_verify_daemon "$dir/verify-slow.sock" "$dir/verify-slow.log" --connect "unix:$dir/slow.sock" --max-workers 1
v=$dir/verify-slow.sock
"$example_modules/verify-request" --hang-up "$v" "hash a" "hash b" "hash c"
out=$(settled_stats "$v")
check verify-daemon-cancelled "cancelled=3 answered=0 outstanding=0" \
        "cancelled=$(stat_of cancelled "$out") answered=$(stat_of answered "$out") outstanding=$(stat_of outstanding "$out")"
check_match verify-daemon-cancel-logged 'connection 1 hung up with 3 requests outstanding: cancelling their calls' "$(cat "$dir/verify-slow.log")"
check_match verify-daemon-after-cancel '^1 ok \$2b\$13\$' "$(ask "$v" "hash d")"
out=$(ask "$v" stats)
check verify-daemon-after-cancel-stats "cancelled=3 answered=1" "cancelled=$(stat_of cancelled "$out") answered=$(stat_of answered "$out")"

# SIGUSR1 writes the stats; SIGTERM stops them cleanly (no leak under a sanitizer).
kill -USR1 "${verify_daemons[1]}"
for _ in $(seq 50); do grep -q 'verify-daemon: connections=0 ' "$dir/verify-slow.log" && break; sleep 0.1; done
check_match verify-daemon-sigusr1 'verify-daemon: connections=0 outstanding=0 answered=1 failed=0 cancelled=3 busy=0 refused=0' "$(cat "$dir/verify-slow.log")"
for p in "${verify_daemons[@]}"; do
        kill -TERM "$p"; wait "$p"
        check "verify-daemon-exit-$p" 0 $?
done
check verify-daemon-bad-option 2 "$("$verify_daemon" --max-outstanding 0 2>/dev/null; echo $?)"
out=$(env -u LISTEN_FDS "$verify_daemon" 2>&1); rc=$?
check verify-daemon-no-socket "1 verify-daemon: Failed to take the socket from systemd (one unix stream socket), and no --listen PATH: Bad file descriptor" "$rc $out"

summary
