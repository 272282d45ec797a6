"""Driver of bench/animation.sh: animated GIF inputs (made by sharp from the
corpus photos: 480×320, 12 frames) resized to half of each side, every
frame, written as animated GIF and as animated WebP (quality 80), Resizer's
pipeline against sharp, one core each, interleaved rounds. Every output is
checked by an independent reader (gifsicle, webpinfo) to keep all 12 frames."""
import os
import re
import statistics
import subprocess
import tempfile

from benchlib import pct, run

W, TARGET, INPUTS = os.environ["BENCH_WORK"], os.environ["TARGET_DIR"], os.environ["INPUTS"]
ROUNDS, PASSES = int(os.environ["ROUNDS"]), int(os.environ.get("PASSES", "1"))
NODE = {"NODE_PATH": f"{W}/node/node_modules"}


def contestants(fmt):
    yield "resizer", [f"{TARGET}/release/examples/bench", "half"], {"FORMAT": fmt}
    yield "sharp", ["node", "bench/sharp_animation.js", fmt], NODE


def frames(path):
    if path.endswith(".gif"):
        info = subprocess.run(["gifsicle", "--info", path], check=True, capture_output=True, text=True).stdout
        return int(re.search(r"(\d+) images", info).group(1))
    info = subprocess.run(["webpinfo", path], check=True, capture_output=True, text=True).stdout
    return info.count("Chunk ANMF")


def main():
    tmp = tempfile.mkdtemp(prefix="anim-bench-")
    inputs = sorted(f"{INPUTS}/{f}" for f in os.listdir(INPUTS) if f.endswith(".gif"))
    print(f"# animated GIF (480×320, 12 frames) → half, one core (taskset -c 0); {len(inputs)} files,"
          f" {ROUNDS} interleaved rounds × {PASSES} passes; median animations per CPU-second")
    print("| output | contestant | animations/s | p50 ms | p99 ms | mean out KB | frames kept | peak RSS MB | vs sharp |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|")
    for fmt in ["gif", "webp"]:
        rates, times, last = {}, {}, {}
        for _ in range(ROUNDS):
            for name, cmd, env in contestants(fmt):
                outdir = f"{tmp}/{fmt}-{name}"
                r = run(cmd, env, [str(PASSES), *inputs], outdir)
                rates.setdefault(name, []).append(r["n"] / r["cpu_s"])
                times.setdefault(name, []).extend(r["times_ms"])
                last[name] = (outdir, r)
        peer = statistics.median(rates["sharp"])
        for name in ["resizer", "sharp"]:
            outdir, r = last[name]
            kept = sorted({frames(f"{outdir}/{o}") for o in os.listdir(outdir)})
            rate = statistics.median(rates[name])
            print(f"| {fmt} | {name} | {rate:.2f} | {pct(times[name], 50):.0f} | {pct(times[name], 99):.0f} |"
                  f" {statistics.mean(r['out_bytes']) / 1024:.0f} | {','.join(map(str, kept))} |"
                  f" {r.get('max_rss_kib', 0) / 1024:.0f} | {rate / peer:.2f}× |")


if __name__ == "__main__":
    main()
