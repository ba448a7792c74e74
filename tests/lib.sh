# What the shell tests share: counted checks and the summary that ends each.
#   . "$(dirname "$0")/lib.sh"
# A test ends with `summary`, whose status is the test's.
passed=0 failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
check() {  # check NAME EXPECTED ACTUAL
        if [ "$2" == "$3" ]; then pass; else fail "$1: expected [$2], got [$3]"; fi
}
check_match() {  # check_match NAME REGEX ACTUAL
        if [[ "$3" =~ $2 ]]; then pass; else fail "$1: expected to match [$2], got [$3]"; fi
}
summary() {
        echo "$passed passed, $failed failed"
        [ "$failed" -eq 0 ]
}
