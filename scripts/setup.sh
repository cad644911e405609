#!/usr/bin/env bash
# Installs exactly what jetlua needs from Debian, and only what is missing.
# Idempotent: a second run installs nothing. Used by README's commands and .ci/run.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config   # toolchain
  libnats-dev                        # cnats 3.4.1 (the NATS C client)
  libluajit2-5.1-dev                 # OpenResty's maintained LuaJIT 2.1 branch
  libuv1-dev                         # the event loop
  libssl-dev                         # libcrypto: NKey seeds (Ed25519 public keys)
  lua-cjson                          # jet.json
  libmicrohttpd-dev                  # --metrics: the embedded HTTP server (limits, timeouts built in)
  nats-server                        # embedded default server and the tests' servers
  openssl                            # the TLS tests generate their certificates with it
  curl procps                        # tests: HTTP checks, ps/pgrep for orphan checks
  python3                            # tests: a strict JSON parser for --log-format json lines, the TCP proxy
  python3-prometheus-client          # tests: parse /metrics with a real Prometheus parser
  golang-go                          # tests: the Go peer of the NATS services test (tests/go)
  golang-github-nats-io-go-nats-dev  # tests: nats.go 1.22 and its micro package, for that peer
  dpkg-dev                           # scripts/package.sh: dpkg-shlibdeps computes the .deb's Depends
  python3-yaml man-db systemd        # tests: contrib/ manifests parsed, man page rendered, unit verified
  bsdutils                           # tests: script(1) gives a tool a terminal (its confirmation prompt)
  lua-check cppcheck clang-format git  # scripts/lint.sh: luacheck, cppcheck, git clang-format
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
