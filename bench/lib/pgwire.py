"""A minimal PostgreSQL wire client for the benchmark (stdlib only).

Enough of the protocol to log in (trust, cleartext, SCRAM-SHA-256), run a
simple query and hold a connection open: the idle-session and approval
figures need exact timings and thousands of cheap connections, which psql
cannot give.
"""

import asyncio
import base64
import hashlib
import hmac
import os
import struct

_salted_cache = {}


def _salted(password, salt, iterations):
    key = (password, salt, iterations)
    if key not in _salted_cache:
        _salted_cache[key] = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return _salted_cache[key]


class PgError(Exception):
    pass


class Conn:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer

    async def _msg(self):
        head = await self.r.readexactly(5)
        kind, length = head[:1], struct.unpack("!I", head[1:])[0]
        body = await self.r.readexactly(length - 4)
        return kind, body

    def _send(self, kind, body):
        self.w.write(kind + struct.pack("!I", len(body) + 4) + body)

    async def login(self, user, password, database):
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        body = struct.pack("!I", 196608) + params
        self.w.write(struct.pack("!I", len(body) + 4) + body)
        await self.w.drain()
        client_first_bare = server_first = None
        nonce = base64.b64encode(os.urandom(18)).decode()
        salted = None
        while True:
            kind, body = await self._msg()
            if kind == b"E":
                raise PgError(_error_text(body))
            if kind == b"R":
                code = struct.unpack("!I", body[:4])[0]
                if code == 0:
                    continue
                if code == 3:
                    self._send(b"p", password.encode() + b"\0")
                elif code == 10:
                    client_first_bare = "n=,r=" + nonce
                    first = ("n,," + client_first_bare).encode()
                    self._send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
                elif code == 11:
                    server_first = body[4:].decode()
                    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                    salted = _salted(password, base64.b64decode(attrs["s"]), int(attrs["i"]))
                    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
                    stored = hashlib.sha256(client_key).digest()
                    without_proof = "c=biws,r=" + attrs["r"]
                    auth_msg = ",".join([client_first_bare, server_first, without_proof]).encode()
                    sig = hmac.new(stored, auth_msg, "sha256").digest()
                    proof = bytes(a ^ b for a, b in zip(client_key, sig))
                    final = without_proof + ",p=" + base64.b64encode(proof).decode()
                    self._send(b"p", final.encode())
                elif code == 12:
                    continue
                else:
                    raise PgError(f"unsupported authentication request {code}")
                await self.w.drain()
            elif kind == b"Z":
                return

    async def query(self, sql):
        """Runs a simple query; returns the command tags, raises on ErrorResponse."""
        self._send(b"Q", sql.encode() + b"\0")
        await self.w.drain()
        tags, error = [], None
        while True:
            kind, body = await self._msg()
            if kind == b"C":
                tags.append(body.rstrip(b"\0").decode())
            elif kind == b"E":
                error = _error_text(body)
            elif kind == b"Z":
                if error:
                    raise PgError(error)
                return tags

    async def query_rows(self, sql):
        """Runs a simple query; returns its rows as lists of text (None for
        NULL), raises on ErrorResponse."""
        self._send(b"Q", sql.encode() + b"\0")
        await self.w.drain()
        rows, error = [], None
        while True:
            kind, body = await self._msg()
            if kind == b"D":
                n = struct.unpack("!H", body[:2])[0]
                at, row = 2, []
                for _ in range(n):
                    size = struct.unpack("!i", body[at:at + 4])[0]
                    at += 4
                    if size < 0:
                        row.append(None)
                    else:
                        row.append(body[at:at + size].decode(errors="replace"))
                        at += size
                rows.append(row)
            elif kind == b"E":
                error = _error_text(body)
            elif kind == b"Z":
                if error:
                    raise PgError(error)
                return rows

    async def close(self):
        try:
            self._send(b"X", b"")
            await self.w.drain()
        except (ConnectionError, OSError):
            pass
        self.w.close()


def _error_text(body):
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[part[:1]] = part[1:].decode(errors="replace")
    return f"{fields.get(b'C', '?')}: {fields.get(b'M', '?')}"


async def connect(host, port, user, password, database, timeout=30):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    conn = Conn(reader, writer)
    try:
        await asyncio.wait_for(conn.login(user, password, database), timeout)
    except BaseException:
        writer.close()
        raise
    return conn
