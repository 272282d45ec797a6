"""Driver of bench/avif.sh: Resizer's AVIF output at several (quality, speed)
pairs against sharp's at its defaults and at the same settings, one core each,
interleaved rounds; SSIM of every output against the float Lanczos3 reference."""
import json
import os
import statistics
import subprocess
import tempfile

W, TARGET, CORPUS = os.environ["BENCH_WORK"], os.environ["TARGET_DIR"], os.environ["CORPUS"]
ROUNDS, PASSES = int(os.environ["ROUNDS"]), int(os.environ.get("PASSES", "1"))
SETS, TASKS = os.environ["SETS"].split(), os.environ["TASKS"].split()
OURS = [tuple(map(int, p.split(":"))) for p in os.environ["OURS"].split()]     # quality:speed
PEERS = [tuple(map(int, p.split(":"))) for p in os.environ["PEERS"].split()]   # quality:effort
ONE = {"VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1"}


def contestants():
    for q, s in OURS:
        yield f"resizer q{q} speed {s}", [f"{TARGET}/release/examples/bench"], {"FORMAT": "avif", "QUALITY": str(q), "AVIF_SPEED": str(s)}
    for q, e in PEERS:
        yield f"sharp q{q} effort {e}", ["node", "bench/sharp_avif.js"], {"QUALITY": str(q), "EFFORT": str(e), "NODE_PATH": f"{W}/node/node_modules"}


def run(cmd, env, task, inputs, outdir):
    env = dict(os.environ, **ONE, **env, OUTDIR=outdir)
    out = subprocess.run(["taskset", "-c", "0", *cmd, task, str(PASSES), *inputs], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    tmp = tempfile.mkdtemp(prefix="avif-bench-")
    print(f"# AVIF encode, one core (taskset -c 0); {ROUNDS} interleaved rounds × {PASSES} passes; median images per CPU-second")
    print("| set | task | contestant | images/s | p50 ms | p99 ms | out bytes | SSIM mean / min | vs sharp defaults |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|")
    every = list(contestants())
    for s in SETS:
        d = f"{CORPUS}/{s}"
        inputs = sorted(f"{d}/{f}" for f in os.listdir(d) if f.endswith((".jpg", ".png", ".webp")))
        for task in TASKS:
            rates, times, last = {}, {}, {}
            for _ in range(ROUNDS):
                for name, cmd, env in every:
                    outdir = f"{tmp}/{s}-{task}-{len(last)}-{name.replace(' ', '_')}"
                    r = run(cmd, env, task, inputs, outdir)
                    rates.setdefault(name, []).append(r["n"] / r["cpu_s"])
                    times.setdefault(name, []).extend(r["times_ms"])
                    last[name] = (outdir, sum(r["out_bytes"]))
            dirs = ",".join(v[0] for v in last.values())
            q = subprocess.run([f"{TARGET}/release/examples/quality", task, dirs, *inputs], env=dict(os.environ, EXT="avif"),
                               check=True, capture_output=True, text=True).stdout
            score = {o["dir"]: o for o in map(json.loads, q.splitlines())}
            peer = statistics.median(rates[every[len(OURS)][0]]) if PEERS else None
            for name, _, _ in every:
                med = statistics.median(rates[name])
                o = score[last[name][0]]
                ratio = f"{med / peer:.2f}×" if peer else "-"
                print(f"| {s} | {task} | {name} | {med:.1f} | {pct(times[name], 50):.1f} | {pct(times[name], 99):.1f} "
                      f"| {last[name][1]:,} | {o['ssim_mean']:.4f} / {o['ssim_min']:.4f} | {ratio} |", flush=True)


main()
