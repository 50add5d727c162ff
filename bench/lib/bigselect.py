"""Times one large select through psql (rows discarded client-side) and
samples a process's RSS meanwhile.

usage: bigselect.py DSN SQL EXPECTED_ROWS [PID]
Prints JSON {"seconds", "rows_per_s", "rss_before_kib", "rss_peak_kib"}.
"""
import json
import subprocess
import sys
import threading
import time

dsn, sql, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
pid = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None


def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


peak, stop = [0], threading.Event()


def sample():
    while not stop.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.02)


before = rss() if pid else None
if pid:
    t = threading.Thread(target=sample)
    t.start()
t0 = time.monotonic()
# -A -t: unaligned, tuples only, so psql's formatting stays cheap; -o /dev/null discards.
p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-o", "/dev/null",
                    "-d", dsn, "-c", sql], capture_output=True, text=True)
elapsed = time.monotonic() - t0
if pid:
    stop.set()
    t.join()
if p.returncode != 0:
    sys.exit(f"big select failed: {p.stderr.strip()}")
print(json.dumps({
    "seconds": round(elapsed, 3), "rows_per_s": round(rows / elapsed),
    "rss_before_kib": before, "rss_peak_kib": peak[0] if pid else None,
}))
