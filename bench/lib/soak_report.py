"""Markdown tables from soak.py's JSON: python3 soak_report.py FILE VERIFY [STORE_BYTES]"""
import json
import re
import sys

r = json.load(open(sys.argv[1]))
print("| figure | value |\n| --- | --- |")
print(f"| operations | {r['operations']} |")
for k, v in sorted(r["counts"].items()):
    print(f"| {k} | {v} |")
print(f"| errors | {r['errors']} |")
print(f"| audit verify | {sys.argv[2]} |")
last = re.search(r"last sequence (\d+)", sys.argv[2])
if len(sys.argv) > 3 and last and int(last.group(1)) > 0:
    size = int(sys.argv[3])
    print(f"| store (SQLite, WAL checkpointed) | {size:,} bytes, {size / int(last.group(1)):.0f} per event |")
if r["first_errors"]:
    print("\nFirst errors:\n")
    for e in r["first_errors"]:
        print(f"- {e}")
print("\nLatency per 30 s (ms, client-side, logins included):\n")
print("| from (s) | operations | p50 | p99 |\n| --- | --- | --- | --- |")
for l in r["latency_ms"]:
    print(f"| {l['from_s']} | {l['n']} | {l['p50']} | {l['p99']} |")
