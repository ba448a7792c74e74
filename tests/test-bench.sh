#!/bin/bash
# aetask-bench --quick, so that the benchmark cannot rot unnoticed: it runs
# every workload to the end, exits 0 and prints its table.  The figures are
# not judged here (a shared CI machine makes them noise); README's
# Performance section is where they are read.
set -uo pipefail
bench=$1
. "$(dirname "$0")/lib.sh"

out=$("$bench" --quick 2>&1); rc=$?
check "exit status" 0 "$rc"
check "the table's heading" 1 "$(grep -c '^workload  figure  *median  *min  *max unit' <<<"$out")"
for workload in floor held cycle parallel payload spawn offload memory many; do
        # Each row ends in numbers: a workload that failed would not print one.
        rows=$(grep -cE "^$workload +[a-z0-9-]+ +[0-9.]+ +[0-9.]+ +[0-9.]+ " <<<"$out")
        check "rows for $workload" yes "$([ "$rows" -ge 1 ] && echo yes || echo "no ($rows)")"
done
# The many workload's floor, a step each (--quick: 8 and 32 connections).
check "many floor rows" 2 "$(grep -cE '^many +[0-9]+-floor +[0-9.]+ ' <<<"$out")"
check "the targets" 1 "$(grep -c '^targets:' <<<"$out")"
check "the machine line" 1 "$(grep -c '^machine: ' <<<"$out")"

[ "$failed" -eq 0 ] || echo "$out"
summary
