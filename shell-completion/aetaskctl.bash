# bash completion for aetaskctl(1): its commands, its options, and handler
# names, those of the sockets in /run/aetask ($AETASK_RUNTIME_DIR).  Reads
# the line as aetaskctl does: options anywhere up to call's METHOD or "--".
# Plain bash, without bash-completion's helpers, so that it works (and is
# tested) where that package is not installed.

# The handlers with a worker socket: NAME of each /run/aetask/NAME.sock.
_aetaskctl_handlers() {
        local dir=${AETASK_RUNTIME_DIR:-/run/aetask} f
        for f in "$dir"/*.sock; do
                [ -S "$f" ] || continue
                f=${f##*/}
                printf '%s\n' "${f%.sock}"
        done
}

_aetaskctl() {
        local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
        local options='-h --help --version -c --connect -t --timeout -j --json -r --raw -w --watch --interval --iterations'
        local words=() parsing=1 verb=-1 i w
        COMPREPLY=()

        # An option's argument: an address or a number, nothing to offer.
        case $prev in -c|--connect|-t|--timeout|--interval|--iterations) return 0 ;; esac

        # The words before the cursor that are not options: [NAME] COMMAND ARG...
        for ((i = 1; i < COMP_CWORD; i++)); do
                w=${COMP_WORDS[i]}
                if [ "$parsing" = 1 ]; then
                        case $w in
                        --) parsing=0; continue ;;
                        -c|--connect|-t|--timeout|--interval|--iterations) i=$((i + 1)); continue ;;
                        -[0-9]*) ;;
                        -?*) continue ;;
                        esac
                fi
                words+=("$w")
                if [ "$verb" -lt 0 ]; then
                        case $w in call|status) verb=$((${#words[@]} - 1)) ;; esac
                        # A first word that is no command is a NAME; a second one ends the search.
                        [ "$verb" -lt 0 ] && [ "${#words[@]}" -ge 2 ] && verb=1
                fi
                # After call's METHOD every word is an argument.
                [ "$verb" -ge 0 ] && [ "${words[verb]}" = call ] && [ "${#words[@]}" -ge $((verb + 2)) ] && parsing=0
        done

        if [ "$parsing" = 1 ] && [[ "$cur" == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$options" -- "$cur")
        elif [ "$verb" -lt 0 ] && [ "${#words[@]}" = 0 ]; then
                mapfile -t COMPREPLY < <(compgen -W "call status $(_aetaskctl_handlers)" -- "$cur")
        elif [ "$verb" -lt 0 ]; then
                mapfile -t COMPREPLY < <(compgen -W "call status" -- "$cur")
        elif [ "${words[verb]}" = status ] && [ "${#words[@]}" = $((verb + 1)) ]; then
                mapfile -t COMPREPLY < <(compgen -W "$(_aetaskctl_handlers)" -- "$cur")
        fi
        return 0
}

complete -F _aetaskctl aetaskctl
