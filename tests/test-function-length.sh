#!/bin/bash
# No function of the product (src/ and examples/; tests aside) is longer
# than 80 lines: one that is does more than one step, and each step wants a
# name.  Functions are written as systemd writes them: the signature starts
# at column 0 and the body ends with a "}" alone at column 0.
#   test-function-length.sh SOURCE_ROOT [MAX]
set -uo pipefail
root=$1 max=${2:-80}

. "$(dirname "$0")/lib.sh"

too_long() {  # too_long FILE...: "FILE:LINE: N lines: SIGNATURE" for each over $max
        awk -v max="$max" '
                /^[A-Za-z_].*\(/ && !/;[[:space:]]*$/ && !/^(typedef|struct|enum|union|static const|#)/ {
                        if (!body) { start = FNR; name = $0; signature = 1 }
                }
                signature && /\{[[:space:]]*$/ { body = 1; signature = 0 }
                signature && /;[[:space:]]*$/ { signature = 0 }
                body && /^\}/ {
                        if (FNR - start + 1 > max) printf "%s:%d: %d lines: %s\n", FILENAME, start, FNR - start + 1, name
                        body = 0
                }' "$@"
}

# The check itself can fail: a function of max + 1 lines is found.
sample=$(mktemp)
trap 'rm -f "$sample"' EXIT
{ echo "static int sample(void) {"; for _ in $(seq "$((max - 1))"); do echo "        x();"; done; echo "}"; } >"$sample"
check "a function of $((max + 1)) lines is found" 1 "$(too_long "$sample" | wc -l)"

cd "$root" || exit 1
files=$(find src examples -name '*.c' | sort)
check "C files found" yes "$([ -n "$files" ] && echo yes || echo no)"
long=$(too_long $files)
if [ -z "$long" ]; then pass; else
        fail "functions over $max lines:"
        echo "$long" | sed 's/^/    /'
fi
summary
