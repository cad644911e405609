#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the demo
# script against a private nats-server that jetlua starts and stops itself.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(bash scripts/build.sh)
exec "./$dir/jetlua" run scripts/examples/hello.lua "$@"
