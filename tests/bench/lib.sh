# shellcheck shell=bash
# tests/bench/lib.sh: what every run_*.sh shares (sourced, after cd to the repo root).

# bench_server [--js] [--conf]: a private nats-server on a free 127.0.0.1 port,
# killed and cleaned up at exit. --js: with JetStream (store in $TMP); --conf:
# generous slow-consumer limits for floods. Sets TMP, SERVER and URL.
# shellcheck disable=SC2034  # TMP, SERVER and URL are for the sourcing script
bench_server() {
  local js=() conf=() port='' a
  TMP=$(mktemp -d /tmp/jetlua-bench-XXXXXX)
  for a in "$@"; do
    case $a in
      --js) js=(-js -sd "$TMP/store");;
      --conf) printf 'max_pending: 1GB\nwrite_deadline: "60s"\n' > "$TMP/server.conf"
              conf=(-c "$TMP/server.conf");;
      *) echo "bench_server: unknown option $a" >&2; exit 2;;
    esac
  done
  # port -1: the server picks a free one and logs it
  nats-server "${js[@]}" -a 127.0.0.1 -p -1 "${conf[@]}" > "$TMP/server.log" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null || true; rm -rf "$TMP"' EXIT
  for _ in $(seq 200); do
    port=$(sed -n 's/.*Listening for client connections on 127.0.0.1:\([0-9]*\).*/\1/p' "$TMP/server.log")
    [ -n "$port" ] && break; sleep 0.025
  done
  [ -n "$port" ] || { echo "nats-server did not start: $(cat "$TMP/server.log")" >&2; exit 1; }
  URL=nats://127.0.0.1:$port
}

# the number after " KEY=" in a RESULT line on stdin
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
# the median of the numbers on stdin, one per line (blank lines ignored)
median() { awk 'NF' | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
server_version() { nats-server --version | awk '{print $2}'; }
