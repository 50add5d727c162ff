"""Grant issuance throughput: POST /v1/grants from T threads for D seconds,
each thread on its own keep-alive HTTP connection, one verified token.

usage: grants.py API_URL CONNECTION THREADS SECONDS   (token in $BENCH_TOKEN)
Prints JSON {"grants_per_s", "ok", "failed", "first_error"}.
"""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import api  # noqa: E402

base, connection, threads, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
token = os.environ["BENCH_TOKEN"]
u = urllib.parse.urlsplit(base)
ok, failed, errors = [0], [0], []
lock = threading.Lock()
deadline = time.monotonic() + seconds


def worker():
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    n_ok = n_fail = 0
    while time.monotonic() < deadline:
        try:
            status, body = api.request(
                base, "POST", "/v1/grants", token,
                {"connection": connection, "reason": "benchmark", "ttl": "1m"}, conn=conn,
            )
        except (OSError, http.client.HTTPException) as e:
            status, body = 0, str(e)
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        if status == 201:
            n_ok += 1
        else:
            n_fail += 1
            with lock:
                errors.append(f"{status}: {body}")
    with lock:
        ok[0] += n_ok
        failed[0] += n_fail


t0 = time.monotonic()
ts = [threading.Thread(target=worker) for _ in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
elapsed = time.monotonic() - t0
print(json.dumps({
    "grants_per_s": round(ok[0] / elapsed, 1), "ok": ok[0], "failed": failed[0],
    "first_error": errors[0] if errors else None,
}))
