#!/bin/bash
# The consumer-group scenario, by hand: N clients (1, 2, 4) over a round-robin
# split of one input, against one private redis-server flushed before each run.
# Prints wall time, Redis CPU (INFO cpu, user + sys) per input line, and checks
# the union of the outputs against the distinct IDs of the input.
#
#   benches/redis/group.sh SOCK DATA N TOOL [BIN]
#     SOCK  the server's unix socket     DATA  JSON lines with .request_id
#     TOOL  setnx (BIN = logdedup-bench) | shared (BIN = logdedup)
set -euo pipefail
S=$1; data=$2; n=$3; tool=$4; bin=$5; U=redis+unix://$S
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
for k in $(seq 0 $((n-1))); do awk -v n="$n" -v k="$k" 'NR % n == k' "$data" > "$work/in$k"; done
cpu() { redis-cli -s "$S" info cpu | tr -d '\r' | awk -F: '/^used_cpu_(sys|user):/ {s+=$2} END {printf "%.3f", s}'; }
redis-cli -s "$S" flushall >/dev/null; redis-cli -s "$S" config resetstat >/dev/null
case $tool in
  setnx) cmd=("$bin" setnx --redis "$U" --key request_id --batch 1000) ;;
  shared) cmd=("$bin" --key .request_id --exact "$U" --shared -q) ;;
esac
c0=$(cpu); t0=$(date +%s.%N)
for k in $(seq 0 $((n-1))); do "${cmd[@]}" < "$work/in$k" > "$work/out$k" & done
wait
t1=$(date +%s.%N); c1=$(cpu)
lines=$(cat "$work"/out* | wc -l)
distinct=$(cat "$work"/out* | grep -o '"request_id":"[^"]*"' | sort -u | wc -l)
truth=$(grep -o '"request_id":"[^"]*"' "$data" | sort -u | wc -l)
records=$(wc -l < "$data")
printf "%-6s clients %d  wall %6.2f s  redis cpu %6.2f s = %.2f us/line  out %d lines, %d distinct, truth %d\n" \
  "$tool" "$n" "$(echo "$t1-$t0" | bc)" "$(echo "$c1-$c0" | bc)" "$(echo "($c1-$c0)*1000000/$records" | bc -l)" "$lines" "$distinct" "$truth"
[ "$lines" = "$truth" ] && [ "$distinct" = "$truth" ] || { echo "WRONG: output is not the distinct IDs once each"; exit 1; }
