#!/usr/bin/env bash
# Builds the Debian package dist/jetlua_<version>_<arch>.deb and prints its path.
#   bash scripts/package.sh                 build (scripts/build.sh) and package ./build
#   bash scripts/package.sh --build DIR     package an existing plain build
#   bash scripts/package.sh --out DIR       put the .deb there (default ./dist)
# Offline: cmake --install into a staging tree, dpkg-shlibdeps for the shared libraries'
# packages (so Depends follows what the binary really links), dpkg-deb. No root needed.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

build="" out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) echo "usage: bash scripts/package.sh [--build DIR] [--out DIR]" >&2; exit 2 ;;
  esac
done
if [ -z "$build" ]; then
  build=$(bash scripts/build.sh)
fi
if [ ! -x "$build/jetlua" ]; then
  echo "package.sh: no $build/jetlua (build it with scripts/build.sh)" >&2
  exit 2
fi
if grep -q '^JETLUA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  echo "package.sh: $build is a sanitizer build; package a plain one (scripts/build.sh)" >&2
  exit 2
fi

version=$("$build/jetlua" version | sed -n '1s/^jetlua //p')
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/root

DESTDIR=$root cmake --install "$build" --prefix /usr --strip >/dev/null
gzip -9n "$root/usr/share/man/man1/jetlua.1"
install -d -m 755 "$root/etc/jetlua"          # where jetlua@NAME.service finds NAME.lua

# Depends: the packages of the libraries the binary links (dpkg-shlibdeps reads
# debian/control), plus what is loaded at run time: lua-cjson (jet.json).
mkdir -p "$stage/debian"
printf 'Source: jetlua\n\nPackage: jetlua\nArchitecture: any\n' >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O -eroot/usr/bin/jetlua 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
if [ -z "$shlibs" ]; then
  echo "package.sh: dpkg-shlibdeps found no dependencies for usr/bin/jetlua" >&2
  exit 1
fi

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<EOF
Package: jetlua
Version: $version
Architecture: $arch
Maintainer: ${DEBFULLNAME:-jetlua maintainers} <${DEBEMAIL:-maintainers@jetlua.invalid}>
Installed-Size: $(du -sk "$root" | cut -f1)
Depends: $shlibs, lua-cjson
Recommends: nats-server
Section: net
Priority: optional
Description: Lua-scriptable messaging runtime for NATS and JetStream
 jetlua runs Lua scripts on one event loop and talks to NATS and JetStream
 through cnats: message handlers, request/reply services, durable pull
 consumers with retries and dead letters, pipelines, key-value buckets,
 hot reload, Prometheus metrics and a graceful shutdown. Without a server
 given, it starts a private nats-server (recommended package).
 .
 Includes the jetlua(1) man page, example scripts and a systemd template
 unit, jetlua@.service, that runs /etc/jetlua/NAME.lua.
EOF
for s in postinst postrm; do
  cat >"$root/DEBIAN/$s" <<'EOF'
#!/bin/sh
set -e
# a new or removed unit file (jetlua@.service): let a running systemd see it
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null 2>&1 || true
fi
EOF
  chmod 755 "$root/DEBIAN/$s"
done
chmod 755 "$root"

mkdir -p "$out"
deb="$out/jetlua_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
