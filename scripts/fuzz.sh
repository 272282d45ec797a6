#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser (libFuzzer through cargo fuzz, on
# the stable toolchain: coverage instrumentation only, no sanitizer, which
# needs nightly; Rust's own checks and the targets' assertions do the rest).
# The targets and their properties: crates/resizer-fuzz; the binaries: fuzz/.
#
#   scripts/fuzz.sh list                 the targets
#   scripts/fuzz.sh build                build every target
#   scripts/fuzz.sh ci [SECONDS]         each target briefly (default 10 s) on a
#                                        copy of its corpus; fails on any crash
#   scripts/fuzz.sh TARGET [MINUTES]     one target long (default 30), growing
#                                        fuzz/corpus/TARGET; prints execs/s and coverage
#   scripts/fuzz.sh seed                 regenerate the seeds, then minimize every corpus
#   scripts/fuzz.sh cmin TARGET          minimize one corpus in place
#
# A crash lands in fuzz/artifacts/TARGET/; once fixed, keep it in
# fuzz/regressions/TARGET/ so `cargo test -p resizer-fuzz` replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS=$(scripts/tools-dir.sh)
export PATH="$TOOLS/cargo-fuzz/bin:$PATH"
# The fuzz build has its own flags and lockfile: never share the main target dir.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
FUZZ=(cargo fuzz)
BUILD_FLAGS=(--sanitizer none --release --debug-assertions)

targets() { sed -n 's/^    ("\([a-z0-9_]*\)", .*/\1/p' crates/resizer-fuzz/src/lib.rs; }

# Images need room; the text parsers are explored best in small inputs.
max_len() { case "$1" in pipeline_*|probe) echo 65536 ;; usage_segment|identity_feed|config) echo 16384 ;; *) echo 4096 ;; esac; }

run() { # TARGET SECONDS CORPUS_DIR... : one bounded run; libFuzzer's last status line on success
    local target=$1 seconds=$2; shift 2
    local log; log=$(mktemp)
    if ! "${FUZZ[@]}" run "${BUILD_FLAGS[@]}" "$target" "$@" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        grep -v '^INFO' "$log" | tail -40 >&2
        echo "fuzz: $target FAILED; the input is under fuzz/artifacts/$target/" >&2
        rm -f "$log"
        return 1
    fi
    local done execs
    done=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $target ${seconds}s: $execs executions; $done"
    rm -f "$log"
}

case "${1:-}" in
list) targets ;;
build) "${FUZZ[@]}" build "${BUILD_FLAGS[@]}" ;;
ci)
    seconds=${2:-10}
    "${FUZZ[@]}" build "${BUILD_FLAGS[@]}"
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    for t in $(targets); do
        mkdir -p "$scratch/$t"
        run "$t" "$seconds" "$scratch/$t" "fuzz/corpus/$t"
    done
    ;;
seed)
    cargo run -q -p resizer-fuzz --example seed_corpus -- fuzz/seeds
    for t in $(targets); do
        mkdir -p "fuzz/corpus/$t" && cp fuzz/seeds/"$t"/* "fuzz/corpus/$t/"
        "$0" cmin "$t"
    done
    rm -rf fuzz/seeds
    ;;
cmin)
    t=${2:?target}
    "${FUZZ[@]}" cmin "${BUILD_FLAGS[@]}" "$t" "fuzz/corpus/$t" -- -max_len="$(max_len "$t")" >/dev/null 2>&1
    echo "fuzz: $t corpus minimized to $(find "fuzz/corpus/$t" -type f | wc -l) inputs"
    ;;
""|-h|--help) sed -n '2,17p' "$0" ;;
*)
    t=$1
    targets | grep -qx "$t" || { echo "fuzz: unknown target $t (scripts/fuzz.sh list)" >&2; exit 2; }
    "${FUZZ[@]}" build "${BUILD_FLAGS[@]}" "$t"
    mkdir -p "fuzz/corpus/$t"
    run "$t" "$((${2:-30} * 60))" "fuzz/corpus/$t"
    ;;
esac
