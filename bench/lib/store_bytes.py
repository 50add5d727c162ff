"""Where a SQLite store's bytes go: python3 store_bytes.py DB [EVENTS]

Prints a Markdown table of the audit chain's table and indexes (dbstat
page bytes, and per event) and the average size of each column, so a
change to how events are stored (issue 19) can be measured against it.
"""
import sqlite3
import sys

db = sys.argv[1]
c = sqlite3.connect(db)
# What the WAL holds counts too: into the main file first.
c.execute("PRAGMA wal_checkpoint(PASSIVE)")
events = int(sys.argv[2]) if len(sys.argv) > 2 else c.execute(
    "SELECT COALESCE(MAX(seq), 0) FROM audit_events").fetchone()[0]
if events == 0:
    sys.exit("no audit events")
rows = c.execute(
    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
).fetchall()
total = sum(size for _, size in rows)
print("| table or index | bytes | per event |\n| --- | --- | --- |")
for name, size in rows:
    if size * 100 >= total:  # the ones that matter
        print(f"| {name} | {size:,} | {size / events:.0f} |")
print(f"| all | {total:,} | {total / events:.0f} |")
decided = c.execute(
    "SELECT COUNT(*) FROM audit_events WHERE kind IN ('statement.allowed', 'statement.denied')"
).fetchone()[0]
if decided:
    print(f"\n{decided:,} statements decided: {total / decided:.0f} bytes of store per statement "
          "(its decision and its outcome; issue 19's goal is 200).")
cols = ["kind", "grant_id", "session_id", "body", "prev_hash", "hash"]
avg = c.execute(
    "SELECT " + ", ".join(f"AVG(LENGTH({col}))" for col in cols) + " FROM audit_events"
).fetchone()
print("\nAverage bytes per audit row, by column: " + ", ".join(
    f"{col} {a:.0f}" for col, a in zip(cols, avg) if a is not None))
kinds = c.execute(
    "SELECT kind, COUNT(*), AVG(LENGTH(body)) FROM audit_events GROUP BY kind ORDER BY 2 DESC LIMIT 6"
).fetchall()
print("\n| kind | events | body bytes (avg) |\n| --- | --- | --- |")
for kind, n, b in kinds:
    print(f"| {kind} | {n:,} | {b:.0f} |")
