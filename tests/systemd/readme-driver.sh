#!/bin/bash
# Runs inside the container that run-readme.sh boots: README's "Under
# systemd" block from the top of the repository, then "A client in C"
# (the program saved as bcrypt-client.c, and its build-and-run block) in a
# scratch folder, each checked against the output README shows.
set -u
exec >/results/driver.log 2>&1
readme() { bash "$SOURCE/tests/readme.sh" "$@"; }
passed=0 failed=0

run_block() {  # run_block HEADING DIR: runs the section's sh block in DIR
        local name=${1// /-} rc
        readme block "$SOURCE/README.md" "$1" sh >"/tmp/$name.sh" || { failed=$((failed + 1)); return; }
        echo "== $1"
        sed 's/^/  $ /' "/tmp/$name.sh"
        (cd "$2" && timeout 120 bash -e "/tmp/$name.sh") >"/tmp/$name.out" 2>&1
        rc=$?
        sed 's/^/  | /' "/tmp/$name.out"
        if [ "$rc" != 0 ]; then
                failed=$((failed + 1)); echo "FAIL \"$1\" exited $rc"
        elif readme check "/tmp/$name.sh" "/tmp/$name.out"; then
                passed=$((passed + 1)); echo "ok   \"$1\""
        else
                failed=$((failed + 1)); echo "FAIL \"$1\": its output differs from README's"
        fi
}

run_block "Under systemd" "$SOURCE"
mkdir -p /tmp/client
readme block "$SOURCE/README.md" "A client in C" c >/tmp/client/bcrypt-client.c
run_block "A client in C" /tmp/client

echo "$passed passed, $failed failed" | tee /results/summary
