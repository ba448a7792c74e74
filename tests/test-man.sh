#!/bin/bash
# The man pages are the specification: each renders without a single groff
# warning and has a NAME section whatis can read, every alias page points at
# a page that names it, and every exported symbol has a page of its own or
# its group's, so that `man SYMBOL` works; and every section-3 page has an
# EXAMPLE whose C blocks are whole programs or modules that compile against
# the public headers.
#   test-man.sh MAN_SOURCE_DIR MAN_BUILD_DIR SYMBOL_FILE
set -uo pipefail
src=$1 build=$2 sym=$3

. "$(dirname "$0")/lib.sh"

if ! command -v man >/dev/null || ! command -v lexgrog >/dev/null; then
        echo "SKIP: man-db is not installed"
        echo "0 passed, 0 failed"
        exit 77
fi
# The same rendering everywhere: the width man uses when not on a terminal.
export LC_ALL=C.UTF-8 MANWIDTH=80

for page in "$src"/*.[1-8]; do
        name=$(basename "$page")
        warnings=$(man --warnings=w -E UTF-8 -l "$page" 2>&1 >/dev/null)
        if [ -z "$warnings" ]; then pass; else
                fail "$name renders with warnings:"
                echo "$warnings" | sed 's/^/    /'
        fi
        if lexgrog "$page" >/dev/null 2>&1; then pass; else
                fail "$name: whatis cannot read its NAME section"
        fi
done

for alias in "$build"/*.3; do
        [ -e "$alias" ] || break
        name=$(basename "$alias" .3)
        target=$(sed -n 's|^\.so man3/||p' "$alias")
        if [ -z "$target" ] || [ ! -f "$src/$target" ]; then
                fail "alias $name points at no page ($target)"
        elif lexgrog "$src/$target" | grep -qF "\"$name - "; then
                pass
        else
                fail "alias $name: $target does not name it"
        fi
done

for symbol in $(sed -n 's/^[[:space:]]*\(aetask_[a-z0-9_]*\);.*/\1/p' "$sym"); do
        if [ -f "$src/$symbol.3" ] || [ -f "$build/$symbol.3" ]; then pass; else
                fail "$symbol is exported but has no man page"
        fi
done

# The EXAMPLE section's C blocks (.EX to .EE; shell sessions, whose lines
# start with "$ ", aside), with troff's escapes undone.
example_blocks() {  # example_blocks PAGE DIR: writes DIR/N.c, one per block
        local line state=before n=0
        while IFS= read -r line; do
                case $state in
                before) [ "$line" = ".SH EXAMPLE" ] && state=section ;;
                section)
                        [[ "$line" == ".SH "* ]] && break
                        [ "$line" = ".EX" ] && { n=$((n + 1)); : >"$2/$n.c"; state=block; } ;;
                block)
                        if [ "$line" = ".EE" ]; then state=section; continue; fi
                        line=${line//\\-/-}
                        line=${line//\\e/\\}
                        line=${line//\\(aq/\'}
                        line=${line//\\&/}
                        line=${line//\\fB/}
                        line=${line//\\fI/}
                        line=${line//\\fR/}
                        line=${line//\\fP/}
                        printf '%s\n' "$line" >>"$2/$n.c" ;;
                esac
        done <"$1"
}
include=$(realpath "$src/../include")
cflags=$(pkg-config --cflags libsystemd json-c 2>/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for page in "$src"/*.3; do
        name=$(basename "$page")
        mkdir -p "$work/$name"
        example_blocks "$page" "$work/$name"
        programs=0
        for c in "$work/$name"/*.c; do
                [ -e "$c" ] || continue
                grep -q '^\$ ' "$c" && continue
                if ! grep -q '^#include' "$c"; then
                        fail "$name: an EXAMPLE block is a fragment, not a whole program:"
                        sed 's/^/    /' "$c" | head -n 5
                        continue
                fi
                programs=$((programs + 1))
                if out=$(cc -std=gnu11 -Wall -Werror -fsyntax-only -I"$include" $cflags "$c" 2>&1); then pass; else
                        fail "$name: its EXAMPLE block $(basename "$c" .c) does not compile:"
                        echo "$out" | sed 's/^/    /' | head -n 20
                fi
        done
        if [ "$programs" -gt 0 ]; then pass; else fail "$name has no EXAMPLE with a whole program"; fi
done

summary
