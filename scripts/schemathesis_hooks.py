"""Schemathesis hooks for the public port: a real tenant and key, made
through the admin API before the first request (create a tenant -> create
a key -> resize -> usage), so the run exercises authenticated paths.

scripts/schemathesis.sh sets RESIZER_ADMIN_URL and RESIZER_ADMIN_TOKEN.
"""

import json
import os
import urllib.request

import schemathesis


def _admin(method, path, body=None):
    req = urllib.request.Request(
        os.environ["RESIZER_ADMIN_URL"] + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={
            "Authorization": "Bearer " + os.environ["RESIZER_ADMIN_TOKEN"],
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)


@schemathesis.auth()
class TenantKey:
    """One tenant and key per run (refreshed every 5 minutes)."""

    def get(self, case, ctx):
        tenant = _admin("POST", "/admin/v1/tenants",
                        {"name": "schemathesis", "rate_limit_rps": 1000, "burst": 2000})
        return _admin("POST", f"/admin/v1/tenants/{tenant['id']}/keys")["secret"]

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
