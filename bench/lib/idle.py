"""Opens N idle sessions to a Postgres endpoint and reports the RSS a
process gained for them: (RSS_N - RSS_0) / N, in KiB per session.

usage: idle.py --host H --port P --user U --password-env VAR --db D --pid PID N [N ...]
Prints one JSON object per level on stdout.
"""

import argparse
import asyncio
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import pgwire  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def level(args, password, n):
    rss0 = rss_kib(args.pid)
    sem = asyncio.Semaphore(args.parallel)
    errors = []
    timeouts = [0]

    async def one():
        async with sem:
            # A gateway at its client limit leaves further logins in the
            # accept backlog: after a window's worth of timeouts, stop asking.
            if timeouts[0] >= args.parallel:
                return None
            try:
                return await pgwire.connect(args.host, args.port, args.user, password, args.db, args.timeout)
            except Exception as e:  # counted and reported, never fatal
                if isinstance(e, asyncio.TimeoutError):
                    timeouts[0] += 1
                errors.append(f"{type(e).__name__}: {e}")
                return None

    t0 = time.monotonic()
    conns = [c for c in await asyncio.gather(*(one() for _ in range(n))) if c]
    opened_s = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    rss_n = rss_kib(args.pid)
    # Every session must still answer: an idle session is a usable one.
    alive = 0
    for c in conns[:: max(1, len(conns) // 20)]:
        try:
            await asyncio.wait_for(c.query("SELECT 1"), 10)
            alive += 1
        except Exception as e:
            errors.append(f"probe: {e}")
    for c in conns:
        await c.close()
    out = {
        "target_sessions": n,
        "opened": len(conns),
        "failed": len(errors),
        "skipped": n - len(conns) - len(errors),
        "first_error": errors[0] if errors else None,
        "open_seconds": round(opened_s, 2),
        "rss0_kib": rss0,
        "rssn_kib": rss_n,
        "kib_per_session": round((rss_n - rss0) / len(conns), 1) if conns else None,
        "probed_alive": alive,
    }
    print(json.dumps(out), flush=True)
    await asyncio.sleep(args.settle)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-env", required=True)
    p.add_argument("--db", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--parallel", type=int, default=32)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--settle", type=float, default=2)
    p.add_argument("levels", type=int, nargs="+")
    args = p.parse_args()
    password = os.environ[args.password_env]
    for n in args.levels:
        await level(args, password, n)


asyncio.run(main())
