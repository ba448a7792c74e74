#!/bin/bash
# aetaskctl's bash completion (shell-completion/aetaskctl.bash): sourced in
# this shell, asked as bash asks it (COMP_WORDS, COMP_CWORD), its answers in
# COMPREPLY checked: commands, options, and the handler names of the sockets
# in $AETASK_RUNTIME_DIR, here a temporary directory with two real sockets.
#   test-completion.sh COMPLETION_FILE
set -uo pipefail
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# Two listening sockets, one plain file and a control socket: only the first two are handlers.
python3 -c 'import socket, sys
for p in sys.argv[1:]:
    socket.socket(socket.AF_UNIX).bind(p)' "$dir/bcrypt.sock" "$dir/echo.sock" "$dir/echo.control"
touch "$dir/notasocket.sock"
export AETASK_RUNTIME_DIR=$dir
# shellcheck source=../shell-completion/aetaskctl.bash
source "$1"

. "$(dirname "$0")/lib.sh"
complete_line() {  # complete_line WORD...: the completions of the last word
        COMP_WORDS=(aetaskctl "$@")
        COMP_CWORD=$#
        COMPREPLY=()
        _aetaskctl
        local IFS=' '
        echo "${COMPREPLY[*]}"
}
# Overrides lib.sh's check: this one completes the words itself.
check() {  # check EXPECTED WORD...
        local expected=$1
        shift
        if [ "$expected" == "$(complete_line "$@")" ]; then pass; else
                fail "aetaskctl $*<TAB>: expected [$expected], got [$(complete_line "$@")]"; fi
}

[ "$(complete -p aetaskctl)" == "complete -F _aetaskctl aetaskctl" ] && pass ||
        fail "registered: $(complete -p aetaskctl 2>&1)"
check "call status bcrypt echo" ""
check "call" c
check "status" st
check "bcrypt" b
check "call status" bcrypt ""
check "status" -j bcrypt st
check "bcrypt echo" status ""
check "echo" status e
check "echo" -j status e
check "" status echo ""
check "--json" --js
check "-h --help --version -c --connect -t --timeout -j --json -r --raw -w --watch --interval --iterations" -
check "--timeout" bcrypt --ti
check "--raw" bcrypt call --r
check "-r" status bcrypt -r
# An option's argument is not a handler name.
check "" --connect ""
check "" -t ""
check "" --interval ""
check "echo" --interval 1 status e
check "call status" -t 5 bcrypt ""
# After call's METHOD and after "--", words are arguments: no options offered.
check "" bcrypt call echo --r
check "" bcrypt call -- --r
check "" bcrypt call echo ""

summary
