#!/usr/bin/env bash
# Lossless JPEG XL encode: ours against libjxl's cjxl (efforts 1 and 3) and our
# own PNG encoder, one thread each, on the corpus's PNGs, same run.
#   bench/jxl.sh [REPS]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${RESIZER_CORPUS:-../shared/bench/imaging/corpus}
cargo run -q --release --locked -p resizer-imaging --example jxl_encode -- "$corpus/png" "${1:-5}"
