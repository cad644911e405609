#!/usr/bin/env bash
# Core NATS benchmark: jetlua (Lua) beside raw cnats C programs, same server, same run.
#   run_core.sh [--n N] [--runs R] [--size B] [--build DIR] [--smoke]
# Subscribe: a raw C publisher sends N messages; a C async subscriber and a Lua
# subscriber (alternating) count them, timed first→Nth message.
# Publish: a C publisher and a Lua publisher (alternating) each send N messages
# and flush; nobody subscribes (the server drops them), so only the publisher is timed.
# Reports medians and ratios; it never fails on speed, only when a program fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N=1000000; RUNS=3; SIZE=128; BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --build) BUILD=$2; shift 2;;
    --smoke) N=20000; RUNS=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
JET=$BUILD/jetlua
for b in "$JET" "$BUILD/bench_core_pub" "$BUILD/bench_core_sub"; do
  [ -x "$b" ] || { echo "missing $b: build first (scripts/build.sh)" >&2; exit 1; }
done

bench_server --conf


sub_run() {   # $1 = c | lua
  rm -f "$TMP/ready"
  if [ "$1" = c ]; then "$BUILD/bench_core_sub" "$URL" bench.sub "$N" "$TMP/ready" > "$TMP/sub.out" &
  else "$JET" run --log-level warn tests/bench/core_sub.lua "$URL" bench.sub "$N" "$TMP/ready" > "$TMP/sub.out" & fi
  local pid=$!
  for _ in $(seq 400); do [ -e "$TMP/ready" ] && break; sleep 0.025; done
  "$BUILD/bench_core_pub" "$URL" bench.sub "$N" "$SIZE" > /dev/null
  wait $pid || { echo "subscriber ($1) failed: $(cat "$TMP/sub.out")" >&2; return 1; }
  grep RESULT "$TMP/sub.out"
}

pub_run() {
  if [ "$1" = c ]; then "$BUILD/bench_core_pub" "$URL" bench.pub "$N" "$SIZE"
  else "$JET" run --log-level warn tests/bench/core_pub.lua "$URL" bench.pub "$N" "$SIZE"; fi | grep RESULT
}


declare -A RATE CPU
for r in $(seq "$RUNS"); do
  for kind in c lua; do
    line=$(sub_run $kind); RATE[sub_$kind]+="$(echo "$line" | field rate) "; CPU[sub_$kind]+="$(echo "$line" | field cpu_us_per_msg) "
    line=$(pub_run $kind); RATE[pub_$kind]+="$(echo "$line" | field rate) "; CPU[pub_$kind]+="$(echo "$line" | field cpu_us_per_msg) "
  done
done

printf '\ncore NATS, N=%d x %d B, median of %d run(s), nats-server %s\n' "$N" "$SIZE" "$RUNS" "$(server_version)"
printf '%-10s %14s %14s %8s %16s %16s\n' test "raw C msg/s" "jetlua msg/s" ratio "C cpu us/msg" "Lua cpu us/msg"
for t in sub pub; do
  c=$(echo ${RATE[${t}_c]} | tr ' ' '\n' | median); l=$(echo ${RATE[${t}_lua]} | tr ' ' '\n' | median)
  cc=$(echo ${CPU[${t}_c]} | tr ' ' '\n' | median); lc=$(echo ${CPU[${t}_lua]} | tr ' ' '\n' | median)
  printf '%-10s %14.0f %14.0f %8.2f %16.3f %16.3f\n' "$t" "$c" "$l" "$(echo "$l / $c" | bc -l)" "$cc" "$lc"
done
