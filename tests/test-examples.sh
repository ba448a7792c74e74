#!/bin/bash
# The seed's two synopses as shipped examples: each with a server of its own,
# and each against a running aetaskd given by address (as a unit's socket
# would be); and the example handler module with a general interface.
# Usage: test-examples.sh HASH_PASSWORD SQLITE_SYNOPSIS EXAMPLE_MODULE_DIR
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

summary
