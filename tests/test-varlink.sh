#!/bin/bash
# A worker socket against Varlink clients nobody here wrote: the Go library's
# (tests/varlink/varlink-client.go, built when Go is installed) and systemd's
# varlinkctl where this systemd has it.  Introspection, calls, Varlink's
# errors; and the aetask client library still served on the same sockets.
# Usage: test-varlink.sh [VARLINK-CLIENT]
set -uo pipefail
client=${1:-}
if [ -z "$client" ] || [ ! -x "$client" ]; then
        echo "SKIP: no Go Varlink client (install golang-go and golang-github-varlink-go-dev)"
        exit 77
fi
dir=$(mktemp -d)
servers=()
trap 'kill "${servers[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
for h in echo bcrypt; do
        "$AETASKD" --listen "unix:$dir/$h.sock" --handler "$h" -o cost=4 2>"$dir/$h.log" &
        servers+=($!)
done
for _ in $(seq 100); do [ -S "$dir/echo.sock" ] && [ -S "$dir/bcrypt.sock" ] && break; sleep 0.05; done

. "$(dirname "$0")/lib.sh"
vl() { "$client" "unix:$dir/$1.sock" "${@:2}"; }

# GetInfo: the Go library sends "parameters": null.
out=$(vl echo info 2>&1)
check info "vendor: aetask
product: aetaskd worker (handler echo)
version: $("$AETASKD" --version | cut -d' ' -f2)
url: man:aetask-protocol(7)
interface: org.varlink.service
interface: io.aetask" "$out"

# The descriptions parse with the library's idl package (describe exits 1
# when they do not).
out=$(vl echo describe io.aetask 2>&1); rc=$?
check describe-io.aetask-parses 0 "$rc"
check describe-io.aetask-call "method Call(" "$(grep -o '^method Call(' <<<"$out")"
check describe-io.aetask-hello "method Hello() -> (hello: Greeting)" "$(grep '^method Hello' <<<"$out")"
check describe-io.aetask-errors 9 "$(grep -c '^error ' <<<"$out")"
out=$(vl bcrypt describe org.varlink.service 2>&1); rc=$?
check describe-org.varlink.service-parses 0 "$rc"
check describe-org.varlink.service "interface org.varlink.service" "$(grep '^interface' <<<"$out")"
out=$(vl echo describe io.example 2>&1); rc=$?
check describe-unknown "1 error: org.varlink.service.InterfaceNotFound {\"interface\":\"io.example\"}" "$rc $out"

# Calls through io.aetask.Call, and their errors.
check call-echo '"x"' "$(vl echo call echo '["x"]' 2>&1)"
check call-catch-all '[1,{"a":null}]' "$(vl echo call - '[1,{"a":null}]' 2>&1)"
out=$(vl echo call fail '["it broke"]' 2>&1); rc=$?
check call-fail "1 error: io.aetask.HandlerError {\"message\":\"it broke\"}" "$rc $out"
out=$(vl echo call nope 2>&1); rc=$?
check call-unknown-method "1 error: io.aetask.MethodNotFound {\"message\":\"unknown method 'nope'\"}" "$rc $out"
hash=$(vl bcrypt call hash '["pw"]' 2>&1)
check call-bcrypt-hash '"$2b$04$' "${hash:0:8}"
check call-bcrypt-verify true "$(vl bcrypt call verify "[$hash,\"pw\"]" 2>&1)"
out=$(vl echo raw io.aetask.Call '{"method":"echo","args":"x"}' 2>&1); rc=$?
check invalid-parameter "1 error: org.varlink.service.InvalidParameter {\"parameter\":\"args\"}" "$rc $out"
out=$(vl echo raw org.varlink.service.Nope 2>&1); rc=$?
check unknown-varlink-method "1 error: org.varlink.service.MethodNotFound {\"method\":\"org.varlink.service.Nope\"}" "$rc $out"
out=$(vl echo raw io.example.Thing.Do '{}' 2>&1); rc=$?
check unknown-interface "1 error: org.varlink.service.InterfaceNotFound {\"interface\":\"io.example.Thing\"}" "$rc $out"
check hello-when-asked '2' "$(vl echo raw io.aetask.Hello | sed -n 's/.*"version":\([0-9]*\).*/\1/p')"

# The library's own calls, on the same sockets.
check library-echo '"y"' "$("$AETASKCTL" --connect "unix:$dir/echo.sock" call echo y 2>&1)"
check library-bcrypt true "$("$AETASKCTL" --connect "unix:$dir/bcrypt.sock" call verify "$hash" pw 2>&1)"

# systemd's varlinkctl (systemd 255 and later).
if command -v varlinkctl >/dev/null; then
        out=$(varlinkctl info "unix:$dir/echo.sock" 2>&1); rc=$?
        check varlinkctl-info 0 "$rc"
        out=$(varlinkctl introspect "unix:$dir/echo.sock" io.aetask 2>&1); rc=$?
        check varlinkctl-introspect "0 method Call(" "$rc $(grep -o '^method Call(' <<<"$out")"
        out=$(varlinkctl call "unix:$dir/echo.sock" io.aetask.Call '{"method":"echo","args":["x"]}' 2>&1); rc=$?
        check varlinkctl-call 0 "$rc"
        check varlinkctl-call-result '"x"' "$(tr -d ' \n\t' <<<"$out" | sed -n 's/.*"result":\("[^"]*"\).*/\1/p')"
else
        echo "SKIP varlinkctl: not installed (systemd 255 and later have it; this is $(systemctl --version 2>/dev/null | head -1))"
fi

summary
