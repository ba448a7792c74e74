#!/bin/bash
# The message catalog parses, and explains every MESSAGE_ID the code uses.
set -uo pipefail
catalog=$1 ids_header=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd/catalog"
cp "$catalog" "$root/usr/lib/systemd/catalog/"
. "$(dirname "$0")/lib.sh"
if journalctl --root="$root" --update-catalog 2>"$root/err"; then pass; else
        fail "journalctl --update-catalog:"; cat "$root/err"; fi
listed=$(journalctl --root="$root" --list-catalog 2>/dev/null)
for id in $(sed -n 's/^#define AETASK_MESSAGE_[A-Z_]* *"\([0-9a-f]\{32\}\)".*/\1/p' "$ids_header"); do
        if grep -q "^$id " <<<"$listed"; then pass; else fail "MESSAGE_ID $id has no catalog entry"; fi
done
summary && [ "$passed" -gt 1 ]
