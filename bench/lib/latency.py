"""Average and p99 latency (ms) from pgbench per-transaction logs (-l).

usage: latency.py LOGFILE... ; prints JSON {"avg_ms", "p99_ms", "n"}.
Log lines: client_id transaction_no time_us script_no epoch epoch_us.
"""
import json
import sys

lat = []
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                lat.append(int(parts[2]))
lat.sort()
if not lat:
    sys.exit("no transactions in the pgbench logs")
p99 = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)]
print(json.dumps({"avg_ms": round(sum(lat) / len(lat) / 1000, 4), "p99_ms": round(p99 / 1000, 4), "n": len(lat)}))
