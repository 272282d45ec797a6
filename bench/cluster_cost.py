"""Prints bench/cluster-cost.sh's table from the JSON it wrote: CPU ms per 200 answer
by role, the distributed total against `resizer serve`, and NATS messages per request."""

import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
tick = float(sys.argv[2])


def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None


def ok(report):
    return sum(n for s, n in report["statuses"].items() if s.startswith("2"))


def role(name):
    for prefix in ("nats", "api", "worker", "aggregator"):
        if name.startswith(prefix):
            return prefix
    return name


serve, cluster = load("serve.json"), load("cluster.json")
rows = []
serve_ms = None
if serve:
    n = ok(serve["report"])
    serve_ms = serve["cpu"]["resizer serve"] / tick * 1000 / max(n, 1)
    print(f"serve:   {serve['report']['ok_per_s']:.1f} ok/s, p50 {serve['report']['p50_ms']:.1f} ms, "
          f"p99 {serve['report']['p99_ms']:.1f} ms, CPU {serve_ms:.2f} ms per request, "
          f"of which imaging {serve.get('imaging_us', 0) / 1000 / max(n, 1):.2f}")
if cluster:
    n = max(ok(cluster["report"]), 1)
    report = cluster["report"]
    by_role = {}
    for name, t in cluster["cpu"].items():
        by_role.setdefault(role(name), []).append(t / tick * 1000 / n)
    total = sum(sum(v) for v in by_role.values())
    print(f"cluster: {report['ok_per_s']:.1f} ok/s, p50 {report['p50_ms']:.1f} ms, p99 {report['p99_ms']:.1f} ms, "
          f"statuses {report['statuses']}; imaging {cluster.get('imaging_us', 0) / 1000 / n:.2f} CPU ms per request")
    print()
    print("| component | CPU ms per request |")
    print("|---|---:|")
    for r, v in sorted(by_role.items(), key=lambda kv: -sum(kv[1])):
        detail = f" ({len(v)} × {sum(v) / len(v):.2f})" if len(v) > 1 else ""
        print(f"| {r} | {sum(v):.2f}{detail} |")
    print(f"| **distributed total** | **{total:.2f}** |")
    if serve_ms:
        print(f"| `resizer serve` (same load) | {serve_ms:.2f} |")
        print()
        print(f"CPU ratio distributed / serve: {total / serve_ms:.2f}×; "
              f"throughput ratio: {report['ok_per_s'] / serve['report']['ok_per_s'] * 100:.0f} %")
    before, after = load("nats-before.json"), load("nats-after.json")
    if before and after:
        print()
        print("| NATS server | client msgs in / req | out / req | route msgs in / req | out / req |")
        print("|---|---:|---:|---:|---:|")
        for server in sorted(after):
            b, a = before[server], after[server]

            def route(which, key):
                return sum(r.get(key, 0) for r in (which["routez"].get("routes") or []))

            rin = route(a, "in_msgs") - route(b, "in_msgs")
            rout = route(a, "out_msgs") - route(b, "out_msgs")
            cin = a["varz"]["in_msgs"] - b["varz"]["in_msgs"] - rin
            cout = a["varz"]["out_msgs"] - b["varz"]["out_msgs"] - rout
            print(f"| {server} | {cin / n:.1f} | {cout / n:.1f} | {rin / n:.1f} | {rout / n:.1f} |")

    qb, qa = load("queue-before.json"), load("queue-after.json")
    if qb and qa:

        def ops(texts):
            counts = {}
            for node, text in texts.items():
                for line in text.splitlines():
                    if line.startswith("resizer_queue_operations_total{"):
                        name = line.split('op="')[1].split('"')[0]
                        key = (node.split("-")[0], name)
                        counts[key] = counts.get(key, 0) + float(line.rsplit(" ", 1)[1])
            return counts

        before_ops, after_ops = ops(qb), ops(qa)
        print()
        print("| client | JetStream operation | per request |")
        print("|---|---|---:|")
        for key in sorted(after_ops):
            d = after_ops[key] - before_ops.get(key, 0)
            if d:
                print(f"| {key[0]} | {key[1]} | {d / n:.2f} |")

    tap = load("tap.json")
    if tap:
        print()
        print("Raft messages per request (bench/nats_tap.py; S- stream groups, C- consumer groups; AE = append")
        print("entries a leader sends, each to both followers; R = the followers' responses):")
        for kind, count in sorted(tap.items(), key=lambda kv: -kv[1]):
            print(f"  {kind}: {count / n:.2f}")
