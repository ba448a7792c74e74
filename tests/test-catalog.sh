#!/bin/bash
# The message catalog parses, and explains every MESSAGE_ID the code uses.
set -uo pipefail
catalog=$1 ids_header=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd/catalog"
cp "$catalog" "$root/usr/lib/systemd/catalog/"
passed=0 failed=0
if journalctl --root="$root" --update-catalog 2>"$root/err"; then passed=$((passed + 1)); else
        failed=$((failed + 1)); echo "FAIL: journalctl --update-catalog:"; cat "$root/err"; fi
listed=$(journalctl --root="$root" --list-catalog 2>/dev/null)
for id in $(sed -n 's/^#define AETASK_MESSAGE_[A-Z_]* *"\([0-9a-f]\{32\}\)".*/\1/p' "$ids_header"); do
        if grep -q "^$id " <<<"$listed"; then passed=$((passed + 1)); else
                failed=$((failed + 1)); echo "FAIL: MESSAGE_ID $id has no catalog entry"; fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 1 ]
