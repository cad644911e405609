#!/usr/bin/env bash
# Pipeline benchmark (issue #6): throughput of a 2-stage pipeline (consume -> map ->
# publish_async -> ack, one jet.pipeline) next to a plain consume+ack of the same N
# messages in the same run (median of R; goal >= 0.5x, since each message is consumed once
# and published once), and the longest pause in handling while a consumer under a
# steady flow is hot-reloaded.
#   run_pipeline.sh [--n N] [--runs R] [--size B] [--rate MSGS_PER_S] [--reloads K] [--build DIR] [--smoke]
# A report; it fails only when a program fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
. tests/bench/lib.sh
N=200000; RUNS=3; SIZE=128; RATE=10000; RELOADS=5; BUILD=build
while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --size) SIZE=$2; shift 2;;
    --rate) RATE=$2; shift 2;;
    --reloads) RELOADS=$2; shift 2;;
    --build) BUILD=$2; shift 2;;
    --smoke) N=20000; RUNS=1; RELOADS=2; shift;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
JET=$BUILD/jetlua
[ -x "$JET" ] || { echo "missing $JET: build first (scripts/build.sh)" >&2; exit 1; }
JET=$(realpath "$JET")

bench_server --js

"$JET" run --log-level warn tests/bench/pipeline.lua "$URL" "$N" "$SIZE" "$RUNS" > "$TMP/pipe.out"
"$JET" run --log-level warn tests/bench/reload_pause.lua "$URL" "$JET" "$RATE" "$RELOADS" > "$TMP/reload.out"

pr=$(grep '^RESULT plain' "$TMP/pipe.out" | field rate | median)
pc=$(grep '^RESULT plain' "$TMP/pipe.out" | field cpu_us_per_msg | median)
qr=$(grep '^RESULT pipeline' "$TMP/pipe.out" | field rate | median)
qc=$(grep '^RESULT pipeline' "$TMP/pipe.out" | field cpu_us_per_msg | median)
printf '\npipeline vs plain consume, N=%d x %d B, file storage, median of %d run(s), nats-server %s\n' \
  "$N" "$SIZE" "$RUNS" "$(server_version)"
printf '%-26s %12s %16s %8s\n' test "msgs/s" "cpu us/msg" ratio
printf '%-26s %12.0f %16.3f %8s\n' "consume+ack" "$pr" "$pc" "1.00"
printf '%-26s %12.0f %16.3f %8.2f\n' "pipeline (map+publish)" "$qr" "$qc" "$(echo "$qr / $pr" | bc -l)"
line=$(grep '^RESULT reload' "$TMP/reload.out")
printf '\nhot reload under %s msgs/s: %s of %s reloads done; longest gap between handled messages: %s ms (%s ms before any reload)\n' \
  "$RATE" "$(echo "$line" | field done)" "$RELOADS" "$(echo "$line" | field max_gap_ms)" "$(echo "$line" | field baseline_max_gap_ms)"
