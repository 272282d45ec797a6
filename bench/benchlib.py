"""What the single-core benchmark drivers share: run one contestant pinned
to CPU 0 with one thread, read its JSON line, and take percentiles."""
import json
import os
import subprocess

ONE = {"VIPS_CONCURRENCY": "1", "OMP_NUM_THREADS": "1"}


def run(cmd, env, args, outdir):
    """Runs `cmd args...` on CPU 0; returns the JSON object it prints last."""
    env = dict(os.environ, **ONE, **env, OUTDIR=outdir)
    out = subprocess.run(["taskset", "-c", "0", *cmd, *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def pct(v, p):
    """The p-th percentile, nearest rank."""
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
