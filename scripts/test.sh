#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every crate, store tests against a
# real (throwaway, loopback) PostgreSQL, the black-box tests that start the
# real `resizer` binary (all through `cargo test`, which also replays every
# fuzz corpus and regression), then Schemathesis against the OpenAPI
# documents of a live `resizer serve`, then every fuzz target briefly.
# Arguments go to `cargo test`. RESIZER_FUZZ_SECONDS (default 5) is each
# fuzz target's run; 0 skips the fuzzers (their corpora still replay).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
eval "$(scripts/test-postgres.sh start)"
trap 'scripts/test-postgres.sh stop' EXIT
cargo test --workspace --locked "$@"
scripts/schemathesis.sh 50
fuzz_seconds=${RESIZER_FUZZ_SECONDS:-5}
if [ "$fuzz_seconds" -gt 0 ]; then
    scripts/fuzz.sh ci "$fuzz_seconds"
fi
