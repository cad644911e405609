#!/usr/bin/env bash
# --workers benchmark: one durable consumed by one jetlua process, then by `jetlua run
# --workers 2` (a master and two worker processes, each with its own connection), alternating.
#   run_workers.sh [--n N] [--runs R] [--size B] [--workers W] [--build DIR] [--smoke]
# Before every run js_fill.lua (untimed) re-creates stream BENCH (file storage), fills it with
# N messages of B bytes and makes a fresh durable (explicit ack, ack_wait 60 s). Each process
# runs js_consume_workers.lua: default js:consume + auto-ack, until the server says every
# message is acked. msgs/s = N / (last handled message of any process - first of any process);
# cpu us/msg = user + sys of the whole group (master, workers, their start-up) / N.
# Reports medians; the ratio is the median of per-run ratios. Never fails on speed.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N=200000; RUNS=3; SIZE=128; W=2; BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --workers) W=$2; shift 2;;
    --build) BUILD=$2; shift 2;;
    --smoke) N=20000; RUNS=1; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
JET=$BUILD/jetlua
[ -x "$JET" ] || { echo "missing $JET: build first (scripts/build.sh)" >&2; exit 1; }

bench_server --js

one_run() {   # variant -> "rate cpu_us_per_msg"
  local v=$1 opts=() t0 t1 me=$BASHPID   # this subshell: it waits for the jetlua run
  [ "$v" = single ] || opts=(--workers "$W")
  "$JET" run --log-level warn tests/bench/js_fill.lua "$URL" file "$N" "$SIZE" C1 > "$TMP/fill.out" 2>&1 \
    || { echo "fill failed: $(cat "$TMP/fill.out")" >&2; return 1; }
  t0=$(awk '{print $14 + $15 + $16 + $17}' /proc/$me/stat)   # children's utime+stime so far, ticks
  "$JET" run --log-level warn "${opts[@]}" tests/bench/js_consume_workers.lua "$URL" BENCH C1 "$N" \
    > "$TMP/run.out" 2> "$TMP/run.err" \
    || { echo "$v failed: $(cat "$TMP/run.err" "$TMP/run.out")" >&2; return 1; }
  t1=$(awk '{print $14 + $15 + $16 + $17}' /proc/$me/stat)
  grep -q 'RESULT worker' "$TMP/run.out" || { echo "$v: no RESULT: $(cat "$TMP/run.out")" >&2; return 1; }
  awk -v n="$N" -v ticks="$(( t1 - t0 ))" -v hz="$(getconf CLK_TCK)" '
    /^RESULT worker/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                       total += f["count"]
                       if (f["first"] > 0 && (lo == 0 || f["first"] < lo)) lo = f["first"]
                       if (f["last"] > hi) hi = f["last"]
                       printf "%s=%d ", "w" f["worker"], f["count"] > "/dev/stderr" }
    END { if (total < n) { print "handled " total " of " n > "/dev/stderr"; exit 1 }
          printf "%.0f %.3f\n", n / (hi - lo), ticks / hz * 1e6 / n }' "$TMP/run.out"
}

declare -A RATE CPU
for _ in $(seq "$RUNS"); do
  for v in single workers; do
    read -r rate cpu < <(one_run "$v" 2> "$TMP/split") || { cat "$TMP/split" >&2; exit 1; }
    [ -n "${rate:-}" ] || { cat "$TMP/split" >&2; exit 1; }
    RATE[$v]+="$rate "; CPU[$v]+="$cpu "
    echo "  $v: $rate msg/s, messages per process: $(cat "$TMP/split")"
  done
done

list() { tr -s ' ' '\n' <<< "$1" | grep .; }
med() { list "$1" | median; }
ratio() { paste <(list "$1") <(list "$2") | awk '{print $1 / $2}' | median; }

printf '\nJetStream consume of one durable, N=%d x %d B, file storage, %d core(s), median of %d run(s), nats-server %s\n' \
  "$N" "$SIZE" "$(nproc)" "$RUNS" "$(server_version)"
printf '%-14s %10s %12s %8s\n' test "msgs/s" "cpu us/msg" "ratio"
printf '%-14s %10.0f %12.3f %8.2f\n' "1 process" "$(med "${RATE[single]}")" "$(med "${CPU[single]}")" 1
printf '%-14s %10.0f %12.3f %8.2f\n' "--workers $W" "$(med "${RATE[workers]}")" "$(med "${CPU[workers]}")" \
  "$(ratio "${RATE[workers]}" "${RATE[single]}")"
