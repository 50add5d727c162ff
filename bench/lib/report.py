"""Turns the raw measurements (JSON lines) into the one markdown table.

usage: report.py RAW.jsonl
Each raw line: {"metric": str, "target": "direct"|"pgbouncer"|"sluice",
"round": int, "value": number}. Figures are medians over rounds; added
latency is computed per round against that round's direct run, so drift
between rounds cancels out.
"""
import json
import statistics
import sys
from collections import defaultdict

TARGETS = ["direct", "pgbouncer", "sluice"]
raw = defaultdict(lambda: defaultdict(dict))  # metric -> target -> round -> value
with open(sys.argv[1]) as f:
    for line in f:
        if line.strip():
            r = json.loads(line)
            raw[r["metric"]][r["target"]][r["round"]] = r["value"]

# Added latency over direct, per round.
for base in ["lat_avg_ms", "lat_p99_ms"]:
    for t in ["pgbouncer", "sluice"]:
        for rnd, v in raw[base][t].items():
            d = raw[base]["direct"].get(rnd)
            if d is not None:
                raw[base + "_added"][t][rnd] = v - d


def med(metric, target):
    vals = list(raw[metric][target].values())
    return statistics.median(vals) if vals else None


def fmt(v, digits):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def verdict(ok):
    return "–" if ok is None else ("met" if ok else "**not met**")


def goal_ge_pgb(factor):
    def f(d, p, s):
        return None if s is None or p is None else s >= factor * p
    return f


# (metric, label, digits, goal text, goal check(direct, pgbouncer, sluice))
ROWS = [
    ("tps_simple", "`pgbench -S` simple, 8 clients (tps)", 0, "≥ 1.2× PgBouncer", goal_ge_pgb(1.2)),
    ("tps_prepared", "`pgbench -S -M prepared`, 8 clients (tps)", 0, "≥ 1.2× PgBouncer", goal_ge_pgb(1.2)),
    ("cpu_us_per_tx", "gateway CPU per transaction, `pgbench -S` simple, 8 clients (µs)", 1, "", None),
    ("lat_avg_ms", "1-client latency, average (ms)", 3, "", None),
    ("lat_avg_ms_added", "1-client latency added over direct, average (ms)", 3, "≤ ½ PgBouncer's",
     lambda d, p, s: None if s is None or p is None else s <= 0.5 * p),
    ("lat_p99_ms", "1-client latency, p99 (ms)", 3, "", None),
    ("lat_p99_ms_added", "1-client latency added over direct, p99 (ms)", 3, "≤ ½ PgBouncer's",
     lambda d, p, s: None if s is None or p is None else s <= 0.5 * p),
    ("churn_tps", "connection churn `pgbench -S -C`, 8 clients (tps)", 0, "≥ PgBouncer", goal_ge_pgb(1.0)),
    ("cpu_us_per_conn", "gateway CPU per connection, `pgbench -S -C`, 8 clients (µs)", 0, "", None),
    ("big_rows_s", "big result: 1M-row `SELECT *` (rows/s)", 0, "≥ 0.8× direct",
     lambda d, p, s: None if s is None or d is None else s >= 0.8 * d),
    ("big_rss_growth_kib", "big result: gateway RSS growth during the select (KiB)", 0, "flat (≤ 16 MiB)",
     lambda d, p, s: None if s is None else s <= 16384),
]
IDLE = sorted({m for m in raw if m.startswith("idle_kib_")}, key=lambda m: int(m.split("_")[-1]))
for m in IDLE:
    n = m.split("_")[-1]
    ROWS.append((m, f"RSS per idle session at {n} sessions (KiB)", 1, "≤ 48 KiB",
                 lambda d, p, s: None if s is None else s <= 48))
ROWS += [
    ("grants_per_s", "grant issuance `POST /v1/grants` (grants/s)", 1, "", None),
    ("approval_median_ms", "approval resume: approve response → statement done, median (ms)", 2, "", None),
    ("approval_max_ms", "approval resume: approve response → statement done, max (ms)", 2, "", None),
]

print("| figure | direct | PgBouncer | Sluice | Sluice / direct | Sluice / PgBouncer | goal (issue 7) | met? |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
for metric, label, digits, goal, check in ROWS:
    if not any(raw[metric].values()):  # not measured in this run
        continue
    d, p, s = (med(metric, t) for t in TARGETS)
    added = metric.endswith("_added")
    print(
        f"| {label} | {fmt(d, digits) if not added else '0 (baseline)'} | {fmt(p, digits)} | {fmt(s, digits)} "
        f"| {'–' if added else ratio(s, d)} | {ratio(s, p)} | {goal or '–'} "
        f"| {verdict(check(d, p, s)) if check else '–'} |"
    )
