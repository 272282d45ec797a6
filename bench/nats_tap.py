"""Counts the NATS servers' Raft traffic for a while, by kind of group.

    python3 bench/nats_tap.py HOST PORT SYS_PASSWORD SECONDS

Connects as `sys` to the system account (deploy/cluster.sh with NATS_SYS_PASSWORD set)
and subscribes to `$NRG.>`: append entries (`$NRG.AE.<group>`, one per entry batch sent
by a leader to its followers), responses (`$NRG.R.*`) and votes. Groups are named by
kind: `S-` streams, `C-` consumers, then `R3M`/`R3F` for three replicas in memory or
in files, and `_meta_`. Prints one JSON object: {kind: messages}. The subscription
itself makes every server forward this traffic to the tapped one, so run it in a
measurement of counts, not of CPU.
"""

import collections
import json
import socket
import sys
import time

host, port, password, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
conn = socket.create_connection((host, port), timeout=5)
stream = conn.makefile("rb")
stream.readline()  # INFO
connect = {"user": "sys", "pass": password, "verbose": False, "pedantic": False, "headers": True, "protocol": 1}
conn.sendall(f"CONNECT {json.dumps(connect)}\r\nSUB $NRG.> 1\r\nPING\r\n".encode())
conn.settimeout(1)
counts = collections.Counter()
end = time.time() + seconds
while time.time() < end:
    try:
        line = stream.readline()
    except (TimeoutError, socket.timeout):
        continue
    if not line:
        break
    parts = line.split()
    if not parts:
        continue
    if parts[0] == b"PING":
        conn.sendall(b"PONG\r\n")
    elif parts[0].startswith(b"-ERR"):
        sys.exit(f"nats: {line.decode().strip()}")
    elif parts[0] in (b"MSG", b"HMSG"):
        stream.read(int(parts[-1]) + 2)
        tokens = parts[1].decode().split(".")
        op = tokens[1] if len(tokens) > 1 else "?"
        group = tokens[2] if op in ("AE", "V") and len(tokens) > 2 else ""
        kind = "meta" if group == "_meta_" else group.split("-")[0] + "-" + group.split("-")[1] if "-" in group else ""
        counts[f"{op} {kind}".strip()] += 1
conn.close()
print(json.dumps(dict(counts)))
