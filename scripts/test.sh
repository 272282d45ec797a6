#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate and the black-box
# tests that start the real `resizer` binary on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --locked "$@"
