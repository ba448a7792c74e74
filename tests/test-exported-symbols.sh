#!/bin/bash
# The shared library exports exactly the symbols its version script lists.
set -euo pipefail
lib=$1 sym=$2
exported=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRW]$/ { sub(/@.*/, "", $3); print $3 }' | grep -v '^LIBAETASK' | sort -u)
listed=$(sed -n 's/^[[:space:]]*\(aetask_[a-z0-9_]*\);.*/\1/p' "$sym" | sort -u)
if [ "$exported" != "$listed" ]; then
        echo "exported symbols differ from $sym:"
        diff <(echo "$listed") <(echo "$exported") || true
        exit 1
fi
echo "1 passed, 0 failed: $(echo "$exported" | wc -l) symbols exported, all listed"
