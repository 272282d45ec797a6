"""Drives one Zipf workload of signed variant URLs through HAProxy at a running
`deploy/cluster.sh` and prints one JSON line: the variant caches' hit ratio
(from the API nodes' own counters), client-seen statuses and latency percentiles.

Called by bench/delivery-cluster.sh once per HAProxy balance mode; the same
seed gives both modes the same originals, variants and request sequence.
"""
import base64
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from benchlib import pct

ENV = os.environ
PUBLIC = ENV["PUBLIC_URL"]
ADMIN = ENV["ADMIN_URL"]
TOKEN = ENV["ADMIN_TOKEN"]
API_NODES = ENV["API_NODES"].split(",")  # http://addr:port of each API node
SECRET = ENV["CLUSTER_SECRET"]  # for the nodes' /metrics
CORPUS = ENV["CORPUS"]
ORIGINALS = int(ENV.get("ORIGINALS", "200"))
WIDTHS = int(ENV.get("WIDTHS", "50"))
WARMUP = int(ENV.get("WARMUP", "10000"))
REQUESTS = int(ENV.get("REQUESTS", "20000"))
THREADS = int(ENV.get("THREADS", "16"))
ZIPF_S = float(ENV.get("ZIPF_S", "0.9"))
SEED = int(ENV.get("SEED", "1"))


def call(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def admin(path, body=b"{}"):
    status, out = call("POST", ADMIN + path, body,
                       {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert status == 201, (path, status, out)
    return json.loads(out)


def signed(secret, tenant, name, params):
    """The docs' Python snippet (docs/delivery.md), without expiry."""
    enc = lambda s: urllib.parse.quote(str(s), safe="-._~")
    query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    path = f"/v1/img/{tenant}/{name}"
    mac = hmac.new(secret.encode(), f"{path}?{query}".encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return f"{PUBLIC}{path}?{query}&sig={sig}"


def upload_originals(key):
    """ORIGINALS small JPEGs made by the service itself from the corpus (so a
    miss costs a thumbnail's work), each a distinct image."""
    files = sorted(os.listdir(CORPUS))
    auth = {"Authorization": f"Bearer {key}"}
    deadline = time.time() + 30
    for i in range(ORIGINALS):
        with open(os.path.join(CORPUS, files[i % len(files)]), "rb") as f:
            photo = f.read()
        width = 240 + i // len(files)
        while True:
            status, small = call("POST", f"{PUBLIC}/v1/resize?width={width}&format=jpeg", photo, auth)
            if status == 200 or time.time() > deadline:  # the key reaches the nodes by the feed
                break
            time.sleep(0.2)
        assert status == 200, (status, small[:200])
        status, out = call("PUT", f"{PUBLIC}/v1/originals/o{i}.jpg", small, auth)
        assert status == 201, (status, out[:200])


def cache_counts():
    hits = misses = 0.0
    for node in API_NODES:
        _, text = call("GET", f"{node}/metrics", None, {"Authorization": f"Bearer {SECRET}"})
        for line in text.decode().splitlines():
            m = re.match(r'resizer_variant_cache_requests_total\{outcome="(hit|miss)"\} (\S+)', line)
            if m:
                if m.group(1) == "hit":
                    hits += float(m.group(2))
                else:
                    misses += float(m.group(2))
    return hits, misses


def run(urls, sequence):
    """Requests `sequence` (indices into urls) from THREADS threads in order of taking."""
    it = iter(sequence)
    lock = threading.Lock()
    results = []

    def worker():
        mine = []
        while True:
            with lock:
                n = next(it, None)
            if n is None:
                break
            t = time.perf_counter()
            status, _ = call("GET", urls[n])
            mine.append((status, time.perf_counter() - t))
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - started


def main():
    rng = random.Random(SEED)
    tenant = admin("/admin/v1/tenants", json.dumps({"name": "zipf", "rate_limit_rps": 1000000}).encode())["id"]
    key = admin(f"/admin/v1/tenants/{tenant}/keys")["secret"]
    secret = admin(f"/admin/v1/tenants/{tenant}/signing-keys")["secret"]
    upload_originals(key)
    variants = [(i, 32 + 4 * j) for i in range(ORIGINALS) for j in range(WIDTHS)]
    rng.shuffle(variants)  # popularity rank: not tied to an original or a width
    urls = [signed(secret, tenant, f"o{i}.jpg", {"width": w, "format": "jpeg"}) for i, w in variants]
    weights = list(itertools.accumulate(1 / (r + 1) ** ZIPF_S for r in range(len(urls))))
    sequence = rng.choices(range(len(urls)), cum_weights=weights, k=WARMUP + REQUESTS)
    # The signing key reaches both nodes through the feed before the first variant.
    deadline = time.time() + 30
    while call("GET", urls[0])[0] != 200:
        assert time.time() < deadline, "the signing key never reached the API nodes"
        time.sleep(0.2)
    run(urls, sequence[:WARMUP])
    hits0, misses0 = cache_counts()
    results, secs = run(urls, sequence[WARMUP:])
    hits1, misses1 = cache_counts()
    hits, misses = hits1 - hits0, misses1 - misses0
    ok = [lat for status, lat in results if status == 200]
    sizes = [len(call("GET", urls[n])[1]) for n in rng.sample(range(len(urls)), 200)]
    print(json.dumps({
        "balance": ENV.get("VARIANT_BALANCE", "uri"),
        "variants": len(urls),
        "distinct_in_run": len(set(sequence[WARMUP:])),
        "working_set_bytes": int(sum(sizes) / len(sizes) * len(urls)),
        "requests": len(results),
        "ok": len(ok),
        "hit_ratio": hits / (hits + misses) if hits + misses else 0.0,
        "hits": hits,
        "misses": misses,
        "answers_per_s": len(results) / secs,
        "p50_ms": pct(ok, 50) * 1000,
        "p99_ms": pct(ok, 99) * 1000,
    }))


if __name__ == "__main__":
    sys.exit(main())
