"""The one-gateway soak's clients (stdlib only, on bench/lib/pgwire.py).

CLIENTS sessions for DURATION seconds, each looping with a little think
time over a mix: allowed reads (70%), reads of a masked column (10%),
denied statements (10%), statements held for approval with hold = "fail"
(5%), and a logout and login (5%). Each outcome is checked: an allowed
read answers, a masked value never comes back whole, a denial is 42501
naming the rule, a hold names its approval. Anything else is an error
(goal: none).

Prints one JSON object: counts per kind and outcome, errors (first few
kept), and p50/p99 latency (ms) per INTERVAL seconds.

  python3 soak.py HOST PORT USER PASSWORD DATABASE CLIENTS DURATION [INTERVAL]
"""

import asyncio
import json
import random
import sys
import time

import pgwire

MIX = [("read", 70), ("masked", 10), ("denied", 10), ("held", 5), ("relogin", 5)]
SECRET_DOMAIN = "@customers.example"


def pick(rng):
    n = rng.randrange(100)
    for kind, weight in MIX:
        if n < weight:
            return kind
        n -= weight
    return "read"


class Soak:
    def __init__(self, args):
        self.host, self.port, self.user, self.password, self.db = args[:5]
        self.port = int(self.port)
        self.clients, self.duration = int(args[5]), float(args[6])
        self.interval = float(args[7]) if len(args) > 7 else 30.0
        self.start = time.monotonic()
        self.counts = {}
        self.errors = []
        self.error_count = 0
        self.lat = {}

    def note(self, kind, outcome, ms):
        key = f"{kind}:{outcome}"
        self.counts[key] = self.counts.get(key, 0) + 1
        slot = int((time.monotonic() - self.start) // self.interval)
        self.lat.setdefault(slot, []).append(ms)

    def error(self, kind, what):
        self.error_count += 1
        if len(self.errors) < 20:
            self.errors.append(f"{kind}: {what}")

    async def login(self):
        return await pgwire.connect(self.host, self.port, self.user, self.password, self.db)

    async def one(self, conn, kind, rng):
        if kind == "read":
            tags = await conn.query(f"SELECT abalance FROM pgbench_accounts WHERE aid = {rng.randrange(1, 100000)}")
            return "ok" if tags == ["SELECT 1"] else f"unexpected {tags}"
        if kind == "masked":
            rows = await conn.query_rows(f"SELECT id, email FROM customers WHERE id = {rng.randrange(1, 1000)}")
            if len(rows) != 1:
                return f"unexpected {len(rows)} rows"
            if rows[0][1] == f"user{rows[0][0]}{SECRET_DOMAIN}":
                return "LEAKED an unmasked e-mail"
            return "ok"
        if kind == "denied":
            try:
                await conn.query("DROP TABLE pgbench_history")
                return "a denied statement ran"
            except pgwire.PgError as e:
                return "denied" if str(e).startswith("42501") else f"wrong error {e}"
        if kind == "held":
            try:
                await conn.query(f"UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1")
                return "a held statement ran"
            except pgwire.PgError as e:
                return "held" if "approval" in str(e) else f"wrong error {e}"
        return "ok"

    async def client(self, n):
        rng = random.Random(n)
        deadline = self.start + self.duration
        conn = None
        while time.monotonic() < deadline:
            kind = pick(rng) if conn is not None else "login"
            t0 = time.monotonic()
            try:
                if conn is None or kind == "relogin":
                    if conn is not None:
                        await conn.close()
                    conn = None
                    conn = await self.login()
                    outcome = "ok"
                else:
                    outcome = await asyncio.wait_for(self.one(conn, kind, rng), 30)
            except Exception as e:  # any failure is an error, with its text
                outcome = f"{type(e).__name__}: {e}"
                if conn is not None:
                    await conn.close()
                conn = None
            ms = (time.monotonic() - t0) * 1000
            if outcome in ("ok", "denied", "held"):
                self.note(kind, outcome, ms)
            else:
                self.error(kind, outcome)
            await asyncio.sleep(rng.uniform(0.1, 0.9))
        if conn is not None:
            await conn.close()

    async def run(self):
        # Sessions arrive over the first ten seconds, not all at once.
        async def staggered(n):
            await asyncio.sleep(10.0 * n / self.clients)
            await self.client(n)

        await asyncio.gather(*(staggered(n) for n in range(self.clients)))

    def report(self):
        def pct(v, p):
            v = sorted(v)
            return round(v[min(len(v) - 1, int(len(v) * p))], 2) if v else None

        return {
            "clients": self.clients,
            "duration_s": self.duration,
            "counts": self.counts,
            "operations": sum(self.counts.values()),
            "errors": self.error_count,
            "first_errors": self.errors,
            "latency_ms": [
                {"from_s": int(k * self.interval), "n": len(v), "p50": pct(v, 0.5), "p99": pct(v, 0.99)}
                for k, v in sorted(self.lat.items())
            ],
        }


async def main():
    soak = Soak(sys.argv[1:])
    await soak.run()
    print(json.dumps(soak.report()))


if __name__ == "__main__":
    asyncio.run(main())
