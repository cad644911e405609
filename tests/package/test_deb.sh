#!/usr/bin/env bash
# The Debian package, end to end: build it (scripts/package.sh), check its contents and that
# Depends names the package of every shared library the binary needs, install it with dpkg -i,
# run an example with /usr/bin/jetlua from a directory outside the tree, check the man page and
# the systemd unit (systemd-analyze verify), then dpkg -r and purge. Changes the system, so it
# is not part of ctest: .ci/run runs it after the test suite (as root; sudo otherwise).
#   bash tests/package/test_deb.sh [--build DIR]      (default: scripts/build.sh's ./build)
set -euo pipefail
cd "$(dirname "$0")/../.."
src=$PWD
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
work=$(mktemp -d)
installed=0
cleanup() {
  if [ $installed = 1 ]; then $SUDO dpkg --purge jetlua >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test_deb: FAIL: $*" >&2; exit 1; }
# set -e ends the script on any failed command: say which one, never end silently
trap 'echo "test_deb: FAIL: line $LINENO: \"$BASH_COMMAND\" exited $?" >&2' ERR
ok() { echo "test_deb: ok - $*"; }
is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

if is_installed jetlua; then
  fail "a jetlua package is already installed here; remove it first (dpkg -r jetlua)"
fi

deb=$(bash scripts/package.sh "$@" | tail -n 1)
[ -f "$deb" ] || fail "scripts/package.sh made no package"
case "$(basename "$deb")" in
  jetlua_*_"$(dpkg --print-architecture)".deb) ok "built $deb" ;;
  *) fail "unexpected package name $deb" ;;
esac

# contents
dpkg-deb -c "$deb" | awk '{print $NF}' >"$work/list"
for f in ./usr/bin/jetlua ./usr/share/jetlua/lua/jetlua/reload.lua ./usr/share/jetlua/lua/jetlua/tools/stream.lua \
         ./usr/share/jetlua/examples/hello.lua ./usr/share/man/man1/jetlua.1.gz ./usr/share/jetlua/types/jetlua.lua \
         ./usr/lib/systemd/system/jetlua@.service ./usr/share/doc/jetlua/README.md ./etc/jetlua/; do
  grep -qxF "$f" "$work/list" || fail "$f is not in the package"
done
ok "contents"

# Depends: the package of every library the binary links is named; lua-cjson; Recommends nats-server
depends=$(dpkg-deb -f "$deb" Depends)
dpkg-deb -x "$deb" "$work/x"
for lib in $(readelf -d "$work/x/usr/bin/jetlua" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  # awk reads to the end: an early exit would kill ldconfig with SIGPIPE, and pipefail would
  # end the script (it did, in 1 of 20 runs, silently)
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && p == "" {p = $NF} END {print p}')
  [ -n "$path" ] || fail "$lib: not found by ldconfig"
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | awk -F: 'NR == 1 {print $1}' || true)
  [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | awk -F: 'NR == 1 {print $1}' || true)
  [ -n "$pkg" ] || fail "$lib ($path): dpkg -S finds no package owning it"
  echo "$depends" | grep -qE "(^|[ ,|])$pkg( |,|$)" || fail "Depends lacks $pkg (for $lib): $depends"
done
for p in libnats3.4 libuv1 lua-cjson; do
  echo "$depends" | grep -qE "(^|[ ,|])$p( |,|$)" || fail "Depends lacks $p: $depends"
done
echo "$depends" | grep -qE "libluajit2-5\.1-2|libluajit-5\.1-2" || fail "Depends lacks LuaJIT: $depends"
[ "$(dpkg-deb -f "$deb" Recommends)" = "nats-server" ] || fail "Recommends: $(dpkg-deb -f "$deb" Recommends)"
ok "Depends: $depends"

# install (its dependencies first, from apt, if any is missing)
missing=()
for p in $(echo "$depends" | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g'); do
  is_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test_deb: installing ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
installed=1
$SUDO dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
[ -x /usr/bin/jetlua ] || fail "/usr/bin/jetlua missing after dpkg -i"
ok "dpkg -i"

# an example, run from a directory outside the tree, against the embedded server
mkdir "$work/run"
(cd "$work/run" && env -u JETLUA_LUA_DIR -u NATS_URL /usr/bin/jetlua run /usr/share/jetlua/examples/hello.lua) \
  >"$work/out" 2>"$work/err" || fail "the example failed: $(cat "$work/out" "$work/err")"
grep -q "3 messages received" "$work/out" || fail "the example's output: $(cat "$work/out")"
grep -q "$src" "$work/err" && fail "the installed jetlua used the source tree: $(cat "$work/err")"
(cd "$work/run" && env -u JETLUA_LUA_DIR /usr/bin/jetlua stream --help >/dev/null) || fail "jetlua stream --help"
ok "/usr/bin/jetlua runs an example from $work/run"

# the man page (unless dpkg is told to leave man pages out, as Docker's slim images do)
if grep -qsE '^path-exclude[= ]+/usr/share/man' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/*; then
  ok "man page: skipped (this system's dpkg excludes /usr/share/man)"
else
  [ -f /usr/share/man/man1/jetlua.1.gz ] || fail "/usr/share/man/man1/jetlua.1.gz missing"
  if command -v man >/dev/null; then
    [ "$(man -w jetlua)" = /usr/share/man/man1/jetlua.1.gz ] || fail "man -w jetlua: $(man -w jetlua 2>&1)"
  fi
  ok "man jetlua"
fi

# the unit file, as systemd reads it (no running systemd needed)
if command -v systemd-analyze >/dev/null; then
  cp /usr/lib/systemd/system/jetlua@.service "$work/jetlua@demo.service"
  systemd-analyze verify "$work/jetlua@demo.service" >"$work/verify" 2>&1 || true
  [ ! -s "$work/verify" ] || fail "systemd-analyze verify: $(cat "$work/verify")"
  ok "systemd-analyze verify jetlua@demo.service"
fi

# remove
$SUDO dpkg -r jetlua >/dev/null || fail "dpkg -r jetlua"
[ ! -e /usr/bin/jetlua ] || fail "/usr/bin/jetlua left after dpkg -r"
[ ! -e /usr/share/jetlua ] || fail "/usr/share/jetlua left after dpkg -r"
$SUDO dpkg --purge jetlua >/dev/null
installed=0
ok "dpkg -r"
echo "test_deb: passed"
