"""Requests one grant and prints `user password database port` for the shell.

usage: grant.py API_URL CONNECTION TTL   (token in $BENCH_TOKEN)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import api  # noqa: E402

status, body = api.request(
    sys.argv[1], "POST", "/v1/grants", os.environ["BENCH_TOKEN"],
    {"connection": sys.argv[2], "reason": "benchmark", "ttl": sys.argv[3]},
)
if status != 201 or body.get("status") != "active":
    sys.exit(f"grant request failed ({status}): {body}")
c = body["credentials"]
print(c["user"], c["password"], c["database"], c["port"])
