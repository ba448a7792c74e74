#!/bin/bash
# A client builds and runs against the build tree through the uninstalled
# pkg-config file (meson-uninstalled/libaetask-sd-uninstalled.pc), as a
# developer of a program using aetask would do before installing it.
# Usage: test-pkgconfig.sh BUILD_ROOT CC B_SANITIZE
set -euo pipefail
build=$1 cc=$2 sanitize=${3:-none}
# A library built with sanitizers needs a program built with them too.
extra=()
[ "$sanitize" != none ] && extra=(-fsanitize="$sanitize")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cat > "$dir/client.c" <<'C'
#include <aetask/aetask-client.h>
#include <aetask/aetask-server.h>
int main(void) {
        aetask_log *l = NULL;
        if (aetask_log_new(&l) < 0)
                return 1;
        aetask_log_unref(l);
        return 0;
}
C
export PKG_CONFIG_PATH="$build/meson-uninstalled"
flags=$(pkg-config --cflags --libs libaetask-sd-uninstalled)
echo "pkg-config: $flags"
# shellcheck disable=SC2086
$cc "${extra[@]}" -o "$dir/client" "$dir/client.c" $flags
LD_LIBRARY_PATH="$build/src/libaetask-sd" "$dir/client"
echo "ok: a client built against the build tree"
