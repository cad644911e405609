#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test
# (C unit tests and Lua integration tests against real nats-server processes).
#   scripts/test.sh             plain build
#   scripts/test.sh --sanitize  AddressSanitizer + UBSan build
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(bash scripts/build.sh "${1:-}")
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$dir"
ctest --output-on-failure -j2 --timeout 600
