#!/usr/bin/env bash
# Vendors the API reference viewer: Redoc's standalone bundle from the npm
# registry, pinned and checked, gzipped into crates/resizer-api/assets/ (the
# binary embeds it; nothing is fetched at run time or at build time). Run it
# to change the version; the result is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=3.0.1
# sha512 of the npm tarball, as the registry publishes it (dist.integrity).
INTEGRITY=$(npm view "redoc@$VERSION" dist.integrity)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack -q "redoc@$VERSION" >/dev/null)
tarball="$work/redoc-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "vendor-redoc: integrity mismatch" >&2; exit 1; }
tar xzf "$tarball" -C "$work" package/bundles/redoc.standalone.js package/LICENSE
gzip -9 -n -c "$work/package/bundles/redoc.standalone.js" >crates/resizer-api/assets/redoc.standalone.js.gz
cp "$work/package/LICENSE" crates/resizer-api/assets/redoc.LICENSE
echo "redoc $VERSION ($INTEGRITY) vendored"
