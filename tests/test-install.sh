#!/bin/bash
# `meson install` stays inside the prefix: this build installed into a
# staging directory (DESTDIR) puts every file under DESTDIR/PREFIX, the units,
# sysusers.d entry, catalog and completion among them, and the .pc file's
# handlerdir follows ${libdir}; a second configuration (setup only, nothing
# compiled) with a prefix of its own and one directory given by option puts
# each file where it was told.
#   test-install.sh SOURCE_ROOT BUILD_ROOT MESON
set -uo pipefail
source_root=$1 build_root=$2 meson=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

. "$(dirname "$0")/lib.sh"
option() {  # option BUILD NAME: the value of a configured option
        "$meson" introspect --buildoptions "$1" |
                python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == sys.argv[1]))' "$2"
}

prefix=$(option "$build_root" prefix)
"$meson" install -C "$build_root" --no-rebuild --quiet --destdir "$dir/stage" >"$dir/install.log" 2>&1
check install-exit 0 $?
outside=$(cd "$dir/stage" && find . ! -type d | sed 's|^\.||' | grep -v "^$prefix/")
check nothing-outside-the-prefix "" "$outside"
for f in systemd/system/aetask@.socket systemd/system/aetask-control@.socket systemd/system/aetask@.service \
         sysusers.d/aetask.conf systemd/catalog/aetask.catalog bash-completion/completions/aetaskctl \
         pkgconfig/libaetask-sd.pc; do
        check "installed-$f" 1 "$(find "$dir/stage$prefix" -path "*/$f" ! -type d | wc -l)"
done
pc=$(find "$dir/stage$prefix" -name libaetask-sd.pc)
check pc-handlerdir 'handlerdir=${libdir}/aetask/handlers' "$(grep '^handlerdir=' "$pc")"
libdir=$(option "$build_root" libdir)
check pc-handlerdir-moves-with-prefix "/opt/y/$libdir/aetask/handlers" \
        "$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix=/opt/y --variable=handlerdir libaetask-sd)"

# A prefix under the temporary directory, and the unit directory elsewhere.
"$meson" setup "$dir/other" "$source_root" --prefix="$dir/x" -Dsystemunitdir="$dir/units" \
        -Dtests=disabled -Dsystemd-tests=disabled >"$dir/setup.log" 2>&1
check other-setup-exit 0 $?
"$meson" introspect --installed "$dir/other" | python3 -c 'import json,sys; print("\n".join(json.load(sys.stdin).values()))' \
        >"$dir/installed"
check other-units 3 "$(grep -c "^$dir/units/aetask[-@a-z]*\.s[a-z]*$" "$dir/installed")"
check other-rest-in-prefix "" "$(grep -v -e "^$dir/x/" -e "^$dir/units/" "$dir/installed")"
check other-sysusers 1 "$(grep -c "^$dir/x/.*sysusers.d/aetask.conf$" "$dir/installed")"
check other-catalog 1 "$(grep -c "^$dir/x/.*/aetask.catalog$" "$dir/installed")"
check other-completion 1 "$(grep -c "^$dir/x/share/bash-completion/completions/aetaskctl$" "$dir/installed")"

summary
