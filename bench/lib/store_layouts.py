"""What other layouts of the audit chain would cost, measured on a real
store: python3 store_layouts.py STORE.db [ROWS]

Copies up to ROWS events (default 200,000, the newest) of the store's
`audit_events` into fresh SQLite files laid out each way below, and prints
the bytes per event and per statement decided of each (dbstat: table and
index pages; "per statement" counts the whole store over the statements
allowed or denied, as issue 19's goal does). The events
are the real ones, bodies included, so the figures are what a change of
layout (issue 19) would buy before any code is written for it. The
layouts are cumulative, each keeping what the one before it dropped.
"""
import json
import os
import sqlite3
import sys
import tempfile
import zlib

src, limit = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
rows = sqlite3.connect(src).execute(
    "SELECT seq, ts, kind, grant_id, session_id, body, prev_hash, hash "
    "FROM audit_events ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
rows.reverse()
n = len(rows)


def compact(body):
    """The body without what the row's columns already hold, keys short."""
    v = json.loads(body)
    for k in ("seq", "ts", "kind", "grant_id", "session_id", "v"):
        if isinstance(v, dict):
            v.pop(k, None)
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


LAYOUTS = [
    ("today: seq BIGINT PRIMARY KEY (own index), hex hashes, JSON body, "
     "indexes on ts and session_id",
     """CREATE TABLE e (seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX e_ts ON e (ts); CREATE INDEX e_session ON e (session_id);""",
     lambda r: r),
    ("seq as the rowid (INTEGER PRIMARY KEY)",
     """CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
        CREATE INDEX e_ts ON e (ts); CREATE INDEX e_session ON e (session_id);""",
     lambda r: r),
    ("hashes as 32-byte blobs",
     """CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL);
        CREATE INDEX e_ts ON e (ts); CREATE INDEX e_session ON e (session_id);""",
     lambda r: r[:6] + (bytes.fromhex(r[6]), bytes.fromhex(r[7]))),
    ("no prev_hash (it is the previous row's hash)",
     """CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body TEXT NOT NULL, hash BLOB NOT NULL);
        CREATE INDEX e_ts ON e (ts); CREATE INDEX e_session ON e (session_id);""",
     lambda r: r[:6] + (bytes.fromhex(r[7]),)),
    ("no ts index (time ranges found by binary search on seq, ts rising with it)",
     """CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body TEXT NOT NULL, hash BLOB NOT NULL);
        CREATE INDEX e_session ON e (session_id);""",
     lambda r: r[:6] + (bytes.fromhex(r[7]),)),
    ("the body without the columns' fields, compact JSON",
     """CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body TEXT NOT NULL, hash BLOB NOT NULL);
        CREATE INDEX e_session ON e (session_id);""",
     lambda r: r[:5] + (compact(r[5]), bytes.fromhex(r[7]))),
    ("the body deflated (zlib, per event)",
     """CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind TEXT NOT NULL,
        grant_id TEXT, session_id TEXT, body BLOB NOT NULL, hash BLOB NOT NULL);
        CREATE INDEX e_session ON e (session_id);""",
     lambda r: r[:5] + (zlib.compress(compact(r[5]).encode(), 6), bytes.fromhex(r[7]))),
]


KINDS = {}
SESSIONS = {}


def interned(r):
    """kind and session as small integers; the session's ids in a table."""
    kind = KINDS.setdefault(r[2], len(KINDS) + 1)
    sess = SESSIONS.setdefault(r[4], (len(SESSIONS) + 1, r[3]))[0] if r[4] else None
    body = zlib.compress(compact(r[5]).encode(), 6)
    return (r[0], r[1], kind, sess, body, bytes.fromhex(r[7]))


INTERNED = """CREATE TABLE s (id INTEGER PRIMARY KEY, session_id TEXT, grant_id TEXT);
    CREATE TABLE e (seq INTEGER PRIMARY KEY, ts BIGINT NOT NULL, kind INTEGER NOT NULL,
    sess INTEGER, body BLOB NOT NULL, hash BLOB NOT NULL);
    CREATE INDEX e_session ON e (sess);"""

LAYOUTS.append(("kind and session interned as small integers (a table of sessions)",
                INTERNED, interned))


def folded(all_rows):
    """Each statement's outcome folded into its decision's row: one row
    per statement (the outcome travels with the next write)."""
    out, pending = [], {}
    for r in all_rows:
        if r[2] == "statement.completed" and r[4] in pending:
            i = pending.pop(r[4])
            d = out[i]
            both = json.dumps([json.loads(compact(d[5])), json.loads(compact(r[5]))],
                              separators=(",", ":"))
            out[i] = d[:5] + (both,) + d[6:]
            continue
        if r[2] == "statement.allowed":
            pending[r[4]] = len(out)
        out.append(r)
    return out


def measure(schema, shape, source=None):
    source = rows if source is None else source
    KINDS.clear()
    SESSIONS.clear()

    def fill(c):
        c.executescript(schema)
        shaped = [shape(r) for r in source]
        marks = ",".join("?" * len(shaped[0]))
        c.executemany(f"INSERT INTO e VALUES ({marks})", shaped)
        save_sessions(c)

    return sized(fill)


def save_sessions(c):
    if SESSIONS:
        c.executemany("INSERT INTO s VALUES (?, ?, ?)",
                      [(i, sid, g) for sid, (i, g) in SESSIONS.items()])


def sized(fill):
    """The pages of a fresh SQLite file that `fill(connection)` wrote."""
    fd, path = tempfile.mkstemp(suffix=".db")
    os.close(fd)
    try:
        c = sqlite3.connect(path)
        fill(c)
        c.commit()
        size = c.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0]
        c.close()
        return size
    finally:
        os.unlink(path)


statements = sum(1 for r in rows if r[2] in ("statement.allowed", "statement.denied"))
print(f"{n:,} events of {src}, {statements:,} statements decided\n")
print("| layout (cumulative) | bytes per event | per statement |\n| --- | --- | --- |")
for name, schema, shape in LAYOUTS:
    size = measure(schema, shape)
    print(f"| {name} | {size / n:.0f} | {size / statements:.0f} |")
size = measure(INTERNED, interned, folded(rows))
print(f"| one row per statement: its outcome folded into its decision | {size / n:.0f} | {size / statements:.0f} |")


def batched(source, per=64):
    """A group commit's events as one record: their compact bodies (with
    kind and session numbers) deflated together, one Merkle root; which
    sessions a batch holds in a small index table."""
    KINDS.clear()
    SESSIONS.clear()

    def fill(c):
        c.executescript("""CREATE TABLE s (id INTEGER PRIMARY KEY, session_id TEXT, grant_id TEXT);
            CREATE TABLE b (first_seq INTEGER PRIMARY KEY, ts BIGINT, n INTEGER, body BLOB, root BLOB);
            CREATE TABLE sb (sess INTEGER, first_seq INTEGER, PRIMARY KEY (sess, first_seq)) WITHOUT ROWID;""")
        for i in range(0, len(source), per):
            chunk = source[i:i + per]
            items, sess_in = [], set()
            for r in chunk:
                kind = KINDS.setdefault(r[2], len(KINDS) + 1)
                sess = SESSIONS.setdefault(r[4], (len(SESSIONS) + 1, r[3]))[0] if r[4] else 0
                sess_in.add(sess)
                items.append([kind, sess, json.loads(compact(r[5]))])
            body = zlib.compress(json.dumps(items, separators=(",", ":")).encode(), 6)
            c.execute("INSERT INTO b VALUES (?, ?, ?, ?, ?)",
                      (chunk[0][0], chunk[0][1], len(chunk), body, os.urandom(32)))
            c.executemany("INSERT INTO sb VALUES (?, ?)", [(x, chunk[0][0]) for x in sess_in if x])
        save_sessions(c)

    return sized(fill)


size = batched(folded(rows))
print(f"| a commit's statements in one record, deflated together (64 a batch) | {size / n:.0f} | {size / statements:.0f} |")
