"""Driver of bench/heif-decode.sh: HEIC and AVIF photos (made from the
corpus JPEGs by heif-enc and avifenc) resized to JPEG, fit 320 and half,
Resizer's pipeline (libheif 1.23 + libde265 / dav1d) against libvips 8.14
(Debian's, with libheif 1.15 over the same decoders; thumbnail and plain
resize) and, for AVIF, sharp (npm's libvips with libheif + aom). One core
each, interleaved rounds, median images per CPU-second; the ratio is
against libvips' thumbnail. Then the peak memory of one 12-bit AVIF."""
import os
import statistics
import tempfile

from benchlib import pct, run

W, TARGET, INPUTS = os.environ["BENCH_WORK"], os.environ["TARGET_DIR"], os.environ["INPUTS"]
HARNESS = os.environ["HARNESS"]
ROUNDS, PASSES = int(os.environ["ROUNDS"]), int(os.environ.get("PASSES", "1"))


def contestants(ext):
    yield "resizer", [f"{TARGET}/release/examples/bench"], {}
    for v in ["vips-thumb", "vips-resize"]:
        yield f"libvips {v[5:]}", [f"{W}/venv-sysvips/bin/python", f"{HARNESS}/py_bench.py", v], {}
    if ext == "avif":
        yield "sharp", ["node", f"{HARNESS}/sharp_bench.js", "sharp-noopt"], {"NODE_PATH": f"{W}/node/node_modules"}


def main():
    tmp = tempfile.mkdtemp(prefix="heif-bench-")
    print(f"# HEIF decode → JPEG q80, one core (taskset -c 0); {ROUNDS} interleaved rounds × {PASSES} passes")
    print("| input | task | contestant | images / CPU-s | p50 ms | p99 ms | peak RSS MB | vs libvips thumbnail |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for ext in ["heic", "avif"]:
        inputs = sorted(f"{INPUTS}/{f}" for f in os.listdir(INPUTS) if f.endswith("." + ext) and "-12bit" not in f)
        for task in ["fit320", "half"]:
            rates, times, rss = {}, {}, {}
            every = list(contestants(ext))
            for _ in range(ROUNDS):
                for name, cmd, env in every:
                    r = run(cmd, env, [task, str(PASSES), *inputs], f"{tmp}/{ext}-{task}-{name}")
                    rates.setdefault(name, []).append(r["n"] / r["cpu_s"])
                    times.setdefault(name, []).extend(r["times_ms"])
                    rss[name] = r.get("max_rss_kib", 0)
            peer = statistics.median(rates["libvips thumb"])
            for name, _, _ in every:
                med = statistics.median(rates[name])
                print(f"| {ext} ({len(inputs)}) | {task} | {name} | {med:.1f} | {pct(times[name], 50):.0f} |"
                      f" {pct(times[name], 99):.0f} | {rss[name] / 1024:.0f} | {med / peer:.2f}× |", flush=True)
    deep = sorted(f"{INPUTS}/{f}" for f in os.listdir(INPUTS) if "-12bit" in f)
    for name, cmd, env in list(contestants("avif"))[:1]:
        r = run(cmd, env, ["half", "1", *deep], f"{tmp}/deep-{name}")
        print(f"\n12-bit AVIF ({os.path.basename(deep[0])}), half → JPEG, {name}: {r['times_ms'][0]:.0f} ms,"
              f" process peak RSS {r.get('max_rss_kib', 0) / 1024:.0f} MB")


if __name__ == "__main__":
    main()
