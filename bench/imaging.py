"""Driver of bench/imaging.sh: runs every contestant as its own pinned process,
interleaving rounds, then scores the last round's outputs for quality."""
import json
import os
import statistics
import subprocess
import sys
import tempfile

W = os.environ["BENCH_WORK"]
IMAGING = os.environ["IMAGING"]
TARGET = os.environ["TARGET_DIR"]
ROUNDS = int(os.environ["ROUNDS"])
SETS = os.environ["SETS"].split()
TASKS = os.environ["TASKS"].split()
ONE_THREAD = {"VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1", "MAGICK_THREAD_LIMIT": "1"}
PASSES = {"jpeg-256k": 3}  # 60 conversions; the 5-image sets get 6 passes (30)

CONTESTANTS = {
    "resizer": [f"{TARGET}/release/examples/bench"],
    "pillow-simd": [f"{W}/venv-simd/bin/python", f"{IMAGING}/harness/py_bench.py", "pillow-thumb"],
    "libvips-8.18": [f"{W}/venv-pil/bin/python", f"{IMAGING}/harness/py_bench.py", "vips-thumb"],
}


def files(s):
    d = f"{IMAGING}/corpus/{s}"
    return sorted(f"{d}/{f}" for f in os.listdir(d) if f.rsplit(".", 1)[-1] in ("jpg", "png", "webp"))


def run(name, task, inputs, passes, outdir):
    env = dict(os.environ, **ONE_THREAD, OUTDIR=outdir)
    cmd = ["taskset", "-c", "0", *CONTESTANTS[name], task, str(passes), *inputs]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    tmp = tempfile.mkdtemp(prefix="imaging-bench-")
    print(f"# imaging, one core (taskset -c 0), in process; {ROUNDS} interleaved rounds; median images per CPU-second")
    print("| set | task | contestant | images/s | p50 ms | p99 ms | out bytes | SSIM mean / min | vs Pillow-SIMD | vs libvips 8.18 |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|---:|")
    for s in SETS:
        inputs = files(s)
        passes = PASSES.get(s, 6)
        for task in TASKS:
            if task == "half" and s in ("png", "webp"):
                continue
            rates, times, last = {n: [] for n in CONTESTANTS}, {n: [] for n in CONTESTANTS}, {}
            for _ in range(ROUNDS):
                for name in CONTESTANTS:
                    outdir = f"{tmp}/{s}-{task}-{name}"
                    r = run(name, task, inputs, passes, outdir)
                    rates[name].append(r["n"] / r["cpu_s"])
                    times[name].extend(r["times_ms"])
                    last[name] = (outdir, sum(r["out_bytes"]))
            quality = {}
            dirs = ",".join(last[n][0] for n in CONTESTANTS)
            q = subprocess.run([f"{TARGET}/release/examples/quality", task, dirs, *inputs],
                               check=True, capture_output=True, text=True).stdout
            for line in q.splitlines():
                o = json.loads(line)
                quality[o["dir"]] = f'{o["ssim_mean"]:.4f} / {o["ssim_min"]:.4f}'
            med = {n: statistics.median(v) for n, v in rates.items()}
            for n in CONTESTANTS:
                print(f"| {s} | {task} | {n} | {med[n]:.0f} | {pct(times[n], 50):.2f} | {pct(times[n], 99):.2f} "
                      f"| {last[n][1]:,} | {quality[last[n][0]]} "
                      f"| {med[n] / med['pillow-simd']:.2f}× | {med[n] / med['libvips-8.18']:.2f}× |")
            sys.stdout.flush()


main()
