#!/usr/bin/env bash
# Vendors the consoles' chart library: uPlot (MIT) from the npm registry,
# pinned by version and by the tarball's sha512 written below, into
# crates/resizer-console/assets/vendor/ (the binary embeds it; nothing is
# fetched at run time or at build time). Run it to change the version, with
# the new integrity from `npm view uplot@VERSION dist.integrity`; the result
# is committed, so building needs neither npm nor the network.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.6.32
INTEGRITY=sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack -q "uplot@$VERSION" >/dev/null)
tarball="$work/uplot-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "vendor-console: integrity mismatch: $got" >&2; exit 1; }
tar xzf "$tarball" -C "$work" package/dist/uPlot.iife.min.js package/dist/uPlot.min.css package/LICENSE
out=crates/resizer-console/assets/vendor
cp "$work/package/dist/uPlot.iife.min.js" "$out/uplot.js"
cp "$work/package/dist/uPlot.min.css" "$out/uplot.css"
cp "$work/package/LICENSE" "$out/uplot.LICENSE"
echo "uplot $VERSION ($INTEGRITY) vendored"
