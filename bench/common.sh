# Sourced by the single-core imaging benchmarks: the build tools and peers,
# and the release build of resizer-imaging's examples (names as arguments),
# with TARGET_DIR exported for the Python drivers.
# shellcheck shell=bash
SHARED=${RESIZER_SHARED:-$PWD/../shared}
export BENCH_WORK=${BENCH_WORK:-/tmp/imgbench}
scripts/setup.sh --build-only
bash "$SHARED/bench/imaging/setup-peers.sh" >&2
build_examples() {
    local args=()
    for e in "$@"; do args+=(--example "$e"); done
    cargo build --release --locked -q -p resizer-imaging "${args[@]}"
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    export TARGET_DIR
}
