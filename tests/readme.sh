#!/bin/bash
# README's command blocks, taken as they are written, so that tests run them
# and they cannot drift.  Plain bash: the booted container has no awk.
#   readme.sh block README HEADING LANG [N]
#       prints the Nth (default first) ```LANG block under the section "## HEADING"
#   readme.sh check BLOCK OUTPUT
#       checks that the output lines the block shows as comments ("# 42",
#       "..." matching anything) appear in OUTPUT in that order
set -euo pipefail

block() {
        local readme=$1 heading=$2 lang=$3 n=${4:-1} state=before line
        while IFS= read -r line; do
                case $state in
                before) [ "$line" = "## $heading" ] && state=section ;;
                section)
                        [[ "$line" == "## "* ]] && break
                        [ "$line" = '```'"$lang" ] && n=$((n - 1)) && [ "$n" = 0 ] && state=block ;;
                block)
                        [ "$line" = '```' ] && return 0
                        printf '%s\n' "$line" ;;
                esac
        done <"$readme"
        echo "readme.sh: no \`\`\`$lang block number ${4:-1} under \"## $heading\" in $readme" >&2
        return 1
}

check() {
        local line pattern expected=() i=0 out
        while IFS= read -r line; do
                [[ "$line" == "# "* ]] && expected+=("${line#\# }")
        done <"$1"
        while IFS= read -r out && [ "$i" -lt "${#expected[@]}" ]; do
                # Everything literal but "...", which stands for any text.
                pattern=${expected[$i]//\\/\\\\}
                pattern=${pattern//\*/\\*}
                pattern=${pattern//\?/\\?}
                pattern=${pattern//\[/\\[}
                pattern=${pattern//.../*}
                out=${out%"${out##*[! ]}"}  # README's lines keep no trailing blanks
                # shellcheck disable=SC2053
                [[ "$out" == $pattern ]] && i=$((i + 1))
        done <"$2"
        if [ "$i" -lt "${#expected[@]}" ]; then
                echo "readme.sh: README shows \"${expected[$i]}\", which the output lacks:" >&2
                sed 's/^/  | /' "$2" >&2
                return 1
        fi
}

"$@"
