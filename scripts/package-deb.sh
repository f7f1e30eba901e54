#!/usr/bin/env bash
# Builds the Debian package joblet_<version>_<arch>.deb and prints its path as the last line of stdout
# (progress goes to stderr).
#
#   scripts/package-deb.sh [OUT_DIR]      (npm run package:deb; OUT_DIR defaults to dist/deb)
#
# Layout of the package:
#   /opt/joblet/{dist,node_modules,bin,package.json,README.md}   compiled code and production dependencies
#                                                                 (bin/ holds its own package.json: CommonJS)
#   /usr/bin/joblet, /usr/bin/rnx                                 symlinks to /opt/joblet/bin/* (Node resolves
#                                                                 the link, so ../dist is found)
#   /lib/systemd/system/joblet.service                            the unit (KillMode=process, Delegate=yes)
# The configs (/opt/joblet/config) and the state (/var/lib/joblet) are not in the package: postinst generates
# the configs with `joblet init`, postrm removes both on purge. So there are no dpkg conffiles: the configs
# hold a per-host CA and keys, which no package version could ship; dpkg must neither replace nor prompt
# about them, and the maintainer scripts keep them across upgrades instead.
# node_modules is installed with `npm ci --omit=dev` in the staging dir; better-sqlite3 is native (built for
# this machine's Node and architecture), which is why the package is architecture-specific.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_DIR=$(mkdir -p "${1:-$ROOT/dist/deb}" && cd "${1:-$ROOT/dist/deb}" && pwd)
VERSION=$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")
ARCH=$(dpkg --print-architecture)
DEB="$OUT_DIR/joblet_${VERSION}_${ARCH}.deb"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/joblet-deb.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PKG="$WORK/root"
APP="$PKG/opt/joblet"
log() { echo "package-deb: $*" >&2; }

started=$(date +%s)
mkdir -p "$APP/bin" "$PKG/usr/bin" "$PKG/lib/systemd/system" "$PKG/DEBIAN"

log "compiling TypeScript into the package"
(cd "$ROOT" && npx tsc -p tsconfig.build.json --outDir "$APP/dist" --sourceMap false) >&2
# Test helpers and benchmarks are compiled too (tsconfig.build.json excludes only *.test.ts); they are not shipped.
rm -rf "$APP/dist/cli/test-support"
find "$APP/dist" -name '*.bench.js' -delete
log "bundling rnx (one file, with its V8 code cache)"
(cd "$ROOT" && node scripts/bundle-cli.mjs --outfile "$APP/dist/rnx.mjs") >&2

log "installing production dependencies (npm ci --omit=dev)"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$APP/"
# Install scripts are run below, deliberately: of the production dependencies only better-sqlite3 has one
# that matters (it compiles its addon: ~45 s on two idle cores, minutes on a busy machine); protobufjs's
# postinstall only prints version warnings.
(cd "$APP" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error) >&2
rm "$APP/package-lock.json"
# better-sqlite3's addon: when the checkout's node_modules holds the same better-sqlite3 version already built
# (for this Node: the load test below proves the ABI matches), its addon is copied; otherwise, or with
# JOBLET_DEB_REBUILD=1, it is compiled here from source. Only the addon is shipped: its sources, SQLite's
# amalgamation and the object files are most of the package's size.
SQLITE="$APP/node_modules/better-sqlite3"
ADDON=build/Release/better_sqlite3.node
sqlite_version() { node -p 'require(process.argv[1]).version' "$1/package.json"; }
if [ "${JOBLET_DEB_REBUILD:-0}" != 1 ] && [ -f "$ROOT/node_modules/better-sqlite3/$ADDON" ] &&
  [ "$(sqlite_version "$ROOT/node_modules/better-sqlite3")" = "$(sqlite_version "$SQLITE")" ]; then
  log "reusing the better-sqlite3 addon built in $ROOT/node_modules"
  mkdir -p "$SQLITE/build/Release"
  cp "$ROOT/node_modules/better-sqlite3/$ADDON" "$SQLITE/$ADDON"
else
  log "compiling better-sqlite3 (npm rebuild)"
  (cd "$APP" && npm rebuild better-sqlite3 --no-audit --no-fund --loglevel=error) >&2
fi
mv "$SQLITE/$ADDON" "$WORK/addon.node"
rm -rf "$SQLITE/build" "$SQLITE/deps" "$SQLITE/src"
mkdir -p "$SQLITE/build/Release"
mv "$WORK/addon.node" "$SQLITE/$ADDON"
strip --strip-unneeded "$SQLITE/$ADDON" 2>/dev/null || true
node -e 'const D = require(process.argv[1]); const db = new D(":memory:"); if (db.prepare("select 41 + 1 as n").get().n !== 42) process.exit(1)' "$SQLITE" ||
  { log "better-sqlite3 does not load with $(node --version); rerun with JOBLET_DEB_REBUILD=1"; exit 1; }

install -m 0755 "$ROOT/bin/joblet" "$ROOT/bin/rnx" "$APP/bin/"
install -m 0644 "$ROOT/bin/package.json" "$APP/bin/package.json"
install -m 0644 "$ROOT/README.md" "$APP/README.md"
ln -s /opt/joblet/bin/joblet "$PKG/usr/bin/joblet"
ln -s /opt/joblet/bin/rnx "$PKG/usr/bin/rnx"
install -m 0644 "$ROOT/packaging/joblet.service" "$PKG/lib/systemd/system/joblet.service"

INSTALLED_KB=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@INSTALLED_SIZE@/$INSTALLED_KB/" \
  "$ROOT/packaging/debian/control.in" >"$PKG/DEBIAN/control"
for script in postinst prerm postrm; do
  install -m 0755 "$ROOT/packaging/debian/$script" "$PKG/DEBIAN/$script"
done
# Files are root:root in the package whoever builds it (--root-owner-group); modes are set explicitly.
find "$PKG" -type d -exec chmod 0755 {} +
chmod -R go-w,a+rX "$APP"

log "building $DEB"
# gzip: 2.7 s for 5.6 MB here, where dpkg-deb's default xz takes 24 s for 3.5 MB.
dpkg-deb -Zgzip --build --root-owner-group "$PKG" "$DEB" >&2
log "done in $(($(date +%s) - started)) s: $(du -h "$DEB" | cut -f1) package, ${INSTALLED_KB} KiB installed"
echo "$DEB"
