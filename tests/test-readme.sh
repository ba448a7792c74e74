#!/bin/bash
# README's command blocks that need no systemd, run as they are written from
# a scratch folder whose build/ is this build tree, their output checked
# against what README shows.  (The first "Under systemd" block and "A client
# in C" run in the booted-systemd suite, tests/systemd/readme-driver.sh; the
# second, an install into a staging directory, needs no systemd and runs here.)
#   test-readme.sh SOURCE_ROOT BUILD_ROOT
set -uo pipefail
source_root=$1 build_root=$2
readme=$source_root/README.md
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ln -s "$build_root" "$dir/build"

. "$(dirname "$0")/lib.sh"
run_section() {  # run_section HEADING [N]: the Nth sh block of the section
        local name=${1// /-}${2:-} rc
        if ! "$source_root/tests/readme.sh" block "$readme" "$1" sh "${2:-1}" >"$dir/$name.sh"; then
                fail "\"$1\": no such block in README.md"; return
        fi
        # In a session of its own, so that whatever it leaves running is ended.
        (cd "$dir" && exec setsid timeout 60 bash -e "$dir/$name.sh") >"$dir/$name.out" 2>&1 &
        wait $!
        rc=$?
        kill -KILL -- "-$!" 2>/dev/null
        if [ "$rc" != 0 ]; then
                fail "\"$1\" exited $rc:"; sed 's/^/  | /' "$dir/$name.out"
        elif "$source_root/tests/readme.sh" check "$dir/$name.sh" "$dir/$name.out"; then
                pass; echo "ok   \"$1\""
        else
                fail "\"$1\": its output differs from README's"
        fi
}

run_section "Trying it by hand"
run_section "The bcrypt and SQLite handlers"
run_section "Under systemd" 2
run_section "An example daemon"

summary
