#!/usr/bin/env bash
# JetStream publish benchmark: jetlua (Lua) beside raw cnats C programs, same server, same run.
#   run_js_publish.sh [--n N] [--m M] [--runs R] [--size B] [--window W] [--build DIR] [--smoke]
# Async: a raw C publisher (bench_js_pubasync.c: js_PublishAsync, MaxPending = W, then
# js_PublishAsyncComplete) and a Lua publisher (js_pubasync.lua: js:publish_async with
# max_pending = W, then js:publish_async_complete), alternating, each publish N messages
# of B bytes into a fresh stream (deleted and re-created by the program before it starts
# the clock), once with file storage and once with memory storage; timed from the first
# publish until every PubAck arrived. CPU µs/msg and peak RSS are those of the publisher.
# Sync: M sequential publishes, each waiting for its PubAck (js_Publish in C, js:publish
# in Lua) into a fresh file stream, after 100 untimed warm-up publishes: p50/p99 latency.
# Reports medians and ratios; it never fails on speed, only when a program fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N=200000; M=5000; RUNS=3; SIZE=128; WINDOW=4000; BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2;;
    --m) M=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --window) WINDOW=$2; shift 2;;
    --build) BUILD=$2; shift 2;;
    --smoke) N=20000; M=500; RUNS=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
[ "$WINDOW" -ge 1 ] 2>/dev/null || { echo "--window must be >= 1" >&2; exit 2; }
JET=$BUILD/jetlua
for b in "$JET" "$BUILD/bench_js_pubasync" "$BUILD/bench_js_pubsync"; do
  [ -x "$b" ] || { echo "missing $b: build first (scripts/build.sh)" >&2; exit 1; }
done

bench_server --js --conf


run() {   # $1 = what (for the error message), the rest = the command; prints its RESULT line
  local what=$1; shift
  if ! "$@" > "$TMP/out" 2> "$TMP/err"; then
    echo "$what failed: $(cat "$TMP/out" "$TMP/err")" >&2; return 1
  fi
  grep RESULT "$TMP/out" || { echo "$what printed no RESULT: $(cat "$TMP/out" "$TMP/err")" >&2; return 1; }
}

async_run() {   # $1 = c | lua, $2 = file | memory
  local stream=BENCH_ASYNC_FILE
  [ "$2" = memory ] && stream=BENCH_ASYNC_MEMORY
  if [ "$1" = c ]; then run "async $2 (C)" "$BUILD/bench_js_pubasync" "$URL" "$stream" "$2" "$N" "$SIZE" "$WINDOW"
  else run "async $2 (Lua)" "$JET" run --log-level warn tests/bench/js_pubasync.lua "$URL" "$stream" "$2" "$N" "$SIZE" "$WINDOW"; fi
}

sync_run() {   # $1 = c | lua
  if [ "$1" = c ]; then run "sync (C)" "$BUILD/bench_js_pubsync" "$URL" BENCH_SYNC "$M" "$SIZE"
  else run "sync (Lua)" "$JET" run --log-level warn tests/bench/js_pubsync.lua "$URL" BENCH_SYNC "$M" "$SIZE"; fi
}

med() { echo "${V[$1]}" | tr ' ' '\n' | median; }

declare -A V
for r in $(seq "$RUNS"); do
  for kind in c lua; do
    for st in file memory; do
      line=$(async_run $kind $st); echo "run $r $kind: $line"
      for f in rate cpu_us_per_msg rss_kb; do V[${st}_${kind}_$f]+="$(echo "$line" | field $f) "; done
    done
    line=$(sync_run $kind); echo "run $r $kind: $line"
    for f in p50_us p99_us; do V[sync_${kind}_$f]+="$(echo "$line" | field $f) "; done
  done
done

printf '\nJetStream async publish, N=%d x %d B, window %d, median of %d run(s), nats-server %s\n' \
  "$N" "$SIZE" "$WINDOW" "$RUNS" "$(server_version)"
printf '%-12s %12s %12s %6s %10s %10s %10s %10s\n' test "raw C msg/s" "jetlua msg/s" ratio \
  "C cpu us" "Lua cpu us" "C RSS MB" "Lua RSS MB"
for st in file memory; do
  c=$(med ${st}_c_rate); l=$(med ${st}_lua_rate)
  printf '%-12s %12.0f %12.0f %6.2f %10.3f %10.3f %10.1f %10.1f\n' "async-$st" "$c" "$l" "$(echo "$l / $c" | bc -l)" \
    "$(med ${st}_c_cpu_us_per_msg)" "$(med ${st}_lua_cpu_us_per_msg)" \
    "$(echo "$(med ${st}_c_rss_kb) / 1024" | bc -l)" "$(echo "$(med ${st}_lua_rss_kb) / 1024" | bc -l)"
done
printf '\nJetStream sync publish latency (file storage), M=%d x %d B, median of %d run(s)\n' "$M" "$SIZE" "$RUNS"
printf '%-12s %12s %12s %6s\n' latency "raw C us" "jetlua us" ratio
for p in p50 p99; do
  c=$(med sync_c_${p}_us); l=$(med sync_lua_${p}_us)
  printf '%-12s %12.1f %12.1f %6.2f\n' "$p" "$c" "$l" "$(echo "$l / $c" | bc -l)"
done
