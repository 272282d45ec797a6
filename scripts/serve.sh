#!/usr/bin/env bash
# Builds and runs `resizer serve` with embedded defaults (in-process queue,
# SQLite, local files under ./resizer-data). Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --build-only
exec cargo run --release --locked -p resizer -- serve "$@"
