#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate, store tests against a
# real (throwaway, loopback) PostgreSQL, and the black-box tests that start the
# real `resizer` binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
eval "$(scripts/test-postgres.sh start)"
trap 'scripts/test-postgres.sh stop' EXIT
cargo test --workspace --locked "$@"
