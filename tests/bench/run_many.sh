#!/usr/bin/env bash
# Many consumers and large messages (issue 15, goal 5), same server, same run.
#   run_many.sh [--consumers C] [--idle S] [--n N] [--size B] [--batch K] [--runs R] [--build DIR] [--smoke]
# idle:  many.lua: C durable pull consumers (explicit ack) on one memory stream, each under
#        js:consume at its defaults (heartbeat 15 s, expires 30 s), then S seconds idle; CPU of
#        the jetlua process and of the server over that window from /proc/PID/stat, the jetlua
#        RSS after setup; the same with 0 consumers (connected only) gives the per-consumer RSS.
#        After the window one message per consumer checks that every consumer still works.
# large: N messages of B bytes (default 1 MiB, the server's default max_payload).
#        consume: js_fill.lua fills stream BENCH (untimed); raw cnats bench_js_fetch with
#        Fetch(K) (K x B in flight; cnats' own pending limit is 64 MiB) against js_consume.lua
#        at js:consume's defaults; publish: bench_js_pubasync against js_pubasync.lua, window K.
#        Bytes/s = msgs/s x B. File and memory storage.
# Reports medians; ratios are medians of per-run ratios. Never fails on speed, only when a
# program fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
C=1000; IDLE=20; N=400; SIZE=1048576; BATCH=32; RUNS=3; BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
    --consumers) C=$2; shift 2;;
    --idle) IDLE=$2; shift 2;;
    --n) N=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --batch) BATCH=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --build) BUILD=$2; shift 2;;
    --smoke) IDLE=5; N=40; RUNS=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
JET=$BUILD/jetlua
for b in "$JET" "$BUILD/bench_js_fetch" "$BUILD/bench_js_pubasync"; do
  [ -x "$b" ] || { echo "missing $b: build first (scripts/build.sh)" >&2; exit 1; }
done
IDLE0=$(( IDLE < 5 ? IDLE : 5 ))   # the 0-consumer baseline

bench_server --js

run() {   # name command... -> its RESULT line(s)
  local name=$1; shift
  "$@" > "$TMP/run.out" 2>&1 || { echo "$name failed: $(cat "$TMP/run.out")" >&2; return 1; }
  grep RESULT "$TMP/run.out"
}
fill() {   # storage
  "$JET" run --log-level warn tests/bench/js_fill.lua "$URL" "$1" "$N" "$SIZE" C1 > "$TMP/fill.out" 2>&1 \
    || { echo "fill failed: $(cat "$TMP/fill.out")" >&2; return 1; }
}
list() { tr -s ' ' '\n' <<< "$1" | grep .; }
med() { list "$1" | median; }
ratio() { paste <(list "$1") <(list "$2") | awk '{print $1 / $2}' | median; }

declare -A V
add() { V[$1]+="$2 "; }   # key value

for _ in $(seq "$RUNS"); do
  # idle: 0 consumers, then C
  for c in 0 "$C"; do
    secs=$IDLE; [ "$c" = 0 ] && secs=$IDLE0
    out=$(run "many $c" "$JET" run --log-level warn tests/bench/many.lua "$URL" "$c" "$secs" "$SERVER")
    add "cpu_$c" "$(echo "$out" | field cpu_pct)"
    add "scpu_$c" "$(echo "$out" | field server_cpu_pct)"
    add "rss_$c" "$(echo "$out" | field rss_kb)"
    add "hbm_$c" "$(echo "$out" | field hb_missed)"
  done
  r0=$(list "${V[rss_0]}" | tail -1); rc=$(list "${V[rss_$C]}" | tail -1)
  add per_consumer "$(awk -v a="$rc" -v b="$r0" -v c="$C" 'BEGIN {printf "%.2f", (a - b) / c}')"
  # large messages, C and Lua alternating
  for st in memory file; do
    fill "$st"
    out=$(run fetch "$BUILD/bench_js_fetch" "$URL" BENCH C1 "$N" "$BATCH")
    add "crate_$st" "$(echo "$out" | field rate)"; add "ccpu_$st" "$(echo "$out" | field cpu_us_per_msg)"
    fill "$st"
    out=$(run consume "$JET" run --log-level warn tests/bench/js_consume.lua "$URL" BENCH C1 "$N" default)
    add "lrate_$st" "$(echo "$out" | field rate)"; add "lcpu_$st" "$(echo "$out" | field cpu_us_per_msg)"
    d=$(echo "$out" | field disconnects); [ "${d:-0}" = 0 ] || add "disc_$st" "$d"
    out=$(run pubasync "$BUILD/bench_js_pubasync" "$URL" BIGPUB "$st" "$N" "$SIZE" "$BATCH")
    add "cprate_$st" "$(echo "$out" | field rate)"; add "cpcpu_$st" "$(echo "$out" | field cpu_us_per_msg)"
    add "cprss_$st" "$(echo "$out" | field rss_kb)"
    out=$(run js_pubasync "$JET" run --log-level warn tests/bench/js_pubasync.lua "$URL" BIGPUB "$st" "$N" "$SIZE" "$BATCH")
    add "lprate_$st" "$(echo "$out" | field rate)"; add "lpcpu_$st" "$(echo "$out" | field cpu_us_per_msg)"
    add "lprss_$st" "$(echo "$out" | field rss_kb)"
  done
done

printf '\nMany consumers: %d durable pull consumers under js:consume defaults (heartbeat 15 s), idle %d s,\n' "$C" "$IDLE"
printf 'median of %d run(s), nats-server %s, load %s\n' "$RUNS" "$(server_version)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %14s %14s %10s %12s\n' consumers "jetlua cpu %" "server cpu %" "RSS MB" "hb missed"
for c in 0 "$C"; do
  printf '%-10s %14.2f %14.2f %10.1f %12s\n' "$c" "$(med "${V[cpu_$c]}")" "$(med "${V[scpu_$c]}")" \
    "$(echo "$(med "${V[rss_$c]}") / 1024" | bc -l)" "$(med "${V[hbm_$c]}")"
done
printf 'RSS per idle consumer: %.1f KB\n' "$(med "${V[per_consumer]}")"

mb() { awk -v r="$1" -v s="$SIZE" 'BEGIN {printf "%.1f", r * s / 1048576}'; }
printf '\nLarge messages: N=%d x %d B, raw C batch/window %d, median of %d run(s)\n' "$N" "$SIZE" "$BATCH" "$RUNS"
printf '%-8s %-9s %11s %11s %7s %11s %11s %9s %9s\n' storage test "C MB/s" "jetlua MB/s" ratio \
  "C cpu us" "Lua cpu us" "C RSS MB" "Lua RSS"
for st in memory file; do
  printf '%-8s %-9s %11s %11s %7.2f %11.0f %11.0f %9s %9s\n' "$st" consume \
    "$(mb "$(med "${V[crate_$st]}")")" "$(mb "$(med "${V[lrate_$st]}")")" \
    "$(ratio "${V[lrate_$st]}" "${V[crate_$st]}")" "$(med "${V[ccpu_$st]}")" "$(med "${V[lcpu_$st]}")" - -
  printf '%-8s %-9s %11s %11s %7.2f %11.0f %11.0f %9.1f %9.1f\n' "$st" publish \
    "$(mb "$(med "${V[cprate_$st]}")")" "$(mb "$(med "${V[lprate_$st]}")")" \
    "$(ratio "${V[lprate_$st]}" "${V[cprate_$st]}")" "$(med "${V[cpcpu_$st]}")" "$(med "${V[lpcpu_$st]}")" \
    "$(echo "$(med "${V[cprss_$st]}") / 1024" | bc -l)" "$(echo "$(med "${V[lprss_$st]}") / 1024" | bc -l)"
  [ -z "${V[disc_$st]:-}" ] || printf 'warning: %s consume: the jetlua connection was lost during a run\n' "$st"
done

printf '\ngoals (reported only):\n'
g() { awk -v what="$1" -v x="$2" -v lim="$3" -v op="$4" 'BEGIN {
  ok = (op == ">=") ? (x >= lim) : (x < lim)
  printf "  %-40s %7.3f %-2s %-5s %s\n", what, x, op, lim, ok ? "met" : "NOT met" }'; }
g "idle cpu % of a core, $C consumers" "$(med "${V[cpu_$C]}")" 2 "<"
for st in memory file; do
  g "$st consume bytes/s / raw C" "$(ratio "${V[lrate_$st]}" "${V[crate_$st]}")" 1.0 ">="
  g "$st publish bytes/s / raw C" "$(ratio "${V[lprate_$st]}" "${V[cprate_$st]}")" 1.0 ">="
done
