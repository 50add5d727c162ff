"""Approval resume latency: a session sends a statement that a guardrail
holds for approval; an approver approves it through the API; we time from
the approve response being received to the statement's CommandComplete.

usage: approve.py API_URL PGPORT SAMPLES
  env: BENCH_WRITER_USER/_PASSWORD/_DB (a write grant), BENCH_APPROVER_TOKEN
Prints JSON {"samples_ms": [...], "median_ms", "max_ms", "errors"}.
"""
import asyncio
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import api  # noqa: E402
import pgwire  # noqa: E402

base, pgport, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = os.environ
approver = env["BENCH_APPROVER_TOKEN"]


def find_pending(marker):
    status, body = api.request(base, "GET", "/v1/approvals?status=pending", approver)
    if status != 200:
        raise RuntimeError(f"list approvals: {status} {body}")
    for a in body.get("approvals", []):
        if a.get("kind") == "statement" and marker in (a.get("statement") or ""):
            return a["id"]
    return None


async def one(conn, i):
    marker = f"bench_approval_{i}_{time.time_ns()}"
    sql = f"UPDATE pgbench_branches SET bbalance = bbalance WHERE bid = 1 /* {marker} */"
    done = {}

    async def run():
        await conn.query(sql)
        done["t"] = time.monotonic()

    task = asyncio.create_task(run())
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + 20
    approval = None
    while approval is None:
        if task.done():
            task.result()
            raise RuntimeError("statement finished without being held")
        if time.monotonic() > deadline:
            raise RuntimeError("no pending approval appeared")
        approval = await loop.run_in_executor(None, find_pending, marker)
        if approval is None:
            await asyncio.sleep(0.05)
    status, body = await loop.run_in_executor(
        None, lambda: api.request(base, "POST", f"/v1/approvals/{approval}/approve", approver, {})
    )
    t_approved = time.monotonic()
    if status != 200:
        raise RuntimeError(f"approve: {status} {body}")
    await asyncio.wait_for(task, 20)
    return (done["t"] - t_approved) * 1000


async def main():
    conn = await pgwire.connect(
        "127.0.0.1", pgport, env["BENCH_WRITER_USER"], env["BENCH_WRITER_PASSWORD"], env["BENCH_WRITER_DB"]
    )
    out, errors = [], []
    for i in range(samples):
        try:
            out.append(await one(conn, i))
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
            break
    await conn.close()
    print(json.dumps({
        "samples_ms": [round(x, 2) for x in out],
        "median_ms": round(statistics.median(out), 2) if out else None,
        "max_ms": round(max(out), 2) if out else None,
        "errors": errors,
    }))


asyncio.run(main())
