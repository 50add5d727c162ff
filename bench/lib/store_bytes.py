"""Where a SQLite store's bytes go: python3 store_bytes.py DB EVENTS

Prints a Markdown table of the audit chain's table and indexes (dbstat
page bytes, and per event) and the average size of each column, so a
change to how events are stored (issue 19) can be measured against it.
"""
import sqlite3
import sys

db, events = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
rows = c.execute(
    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
).fetchall()
total = sum(size for _, size in rows)
print("| table or index | bytes | per event |\n| --- | --- | --- |")
for name, size in rows:
    if size * 100 >= total:  # the ones that matter
        print(f"| {name} | {size:,} | {size / events:.0f} |")
print(f"| all | {total:,} | {total / events:.0f} |")
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
