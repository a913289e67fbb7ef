"""The chaos soak's clients: asyncio HTTP/1.1 clients that keep connections, open new ones, and sometimes abort.

Each request carries `X-Chaos-Id` (traced through the backends' receipts) and is recorded as an `Attempt`
with its times (seconds since the soak's origin), the connection's opening time (a worker killed while the
connection was open explains its failure) and its outcome: `ok`, or the kind of error a user would see.
A client never retries: every failure is counted.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Final

from support.chaos_backend import ID_HEADER, SIZE_HEADER

CLIENT_TIMEOUT: Final = 20.0  # longer than rsp's response timeout in the soak: rsp answers first
NEW_CONNECTION_CHANCE: Final = 0.2  # a kept connection is dropped for a new one this often
BIG_BODY: Final = 512 * 1024
# (kind, weight): idempotent GETs dominate; POSTs are not retried by rsp and are not judged; three ways to abort.
ACTIONS: Final = (("get", 70), ("big_get", 5), ("head", 5), ("post", 8),
                  ("abort_after_send", 4), ("abort_half_head", 4), ("abort_mid_body", 4))
IDEMPOTENT: Final = frozenset({"get", "big_get", "head"})


@dataclass
class Attempt:
    rid: str
    kind: str
    start: float
    end: float = 0.0
    conn_opened: float = 0.0
    reused: bool = False
    outcome: str = ""
    detail: str = ""

    @property
    def idempotent(self) -> bool:
        return self.kind in IDEMPOTENT

    @property
    def aborted(self) -> bool:
        return self.kind.startswith("abort")


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opened: float) -> None:
        self.reader = reader
        self.writer = writer
        self.opened = opened

    def close(self) -> None:
        self.writer.transport.abort()


class ChaosClient:
    def __init__(self, number: int, port: int, seed: int, origin: float, attempts: list[Attempt]) -> None:
        self.number = number
        self.port = port
        self.rng = random.Random(seed)
        self.origin = origin
        self.attempts = attempts
        self.sequence = 0
        self.conn: _Conn | None = None

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.origin

    async def run(self, until: float) -> None:
        """Send requests back to back until `until` (soak time); bounded by it and CLIENT_TIMEOUT each."""
        kinds = [k for k, _ in ACTIONS]
        weights = [w for _, w in ACTIONS]
        try:
            while self.now() < until:
                kind = self.rng.choices(kinds, weights)[0]
                self.sequence += 1
                attempt = Attempt(f"c{self.number}-{self.sequence}", kind, self.now())
                self.attempts.append(attempt)
                if attempt.aborted:
                    await self._abort(attempt)
                else:
                    await self._request(attempt)
                attempt.end = self.now()
                if attempt.outcome in {"connect_refused", "connect_error"}:
                    await asyncio.sleep(0.05)  # no busy loop against a port that refuses
        finally:
            if self.conn is not None:
                self.conn.close()

    async def _open(self) -> _Conn:
        # The connection's time is when connecting began: the handshake may complete (and a worker accept
        # it) well before this loop, busy with other clients, sees it done.
        began = self.now()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", self.port, limit=2 * BIG_BODY), CLIENT_TIMEOUT)
        return _Conn(reader, writer, began)

    def _head(self, attempt: Attempt, method: str, size: int, body: bytes = b"") -> bytes:
        lines = [f"{method} /chaos/{attempt.rid} HTTP/1.1", "Host: chaos.test",
                 f"{ID_HEADER.decode()}: {attempt.rid}", f"{SIZE_HEADER.decode()}: {size}"]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def _request(self, attempt: Attempt) -> None:
        method = {"post": "POST", "head": "HEAD"}.get(attempt.kind, "GET")
        size = BIG_BODY if attempt.kind == "big_get" else self.rng.randrange(16, 4096)
        body = b"p" * self.rng.randrange(1, 2048) if method == "POST" else b""
        attempt.reused = self.conn is not None
        try:
            if self.conn is None:
                self.conn = await self._open()
        except ConnectionRefusedError:
            attempt.outcome = "connect_refused"
            return
        except (TimeoutError, OSError) as exc:
            attempt.outcome, attempt.detail = "connect_error", repr(exc)
            return
        conn = self.conn
        attempt.conn_opened = conn.opened
        keep = False
        try:
            conn.writer.write(self._head(attempt, method, size, body))
            await conn.writer.drain()
            attempt.outcome, keep = await asyncio.wait_for(self._response(conn, attempt, method), CLIENT_TIMEOUT)
        except TimeoutError:
            attempt.outcome = "timeout"
        except ConnectionResetError:
            attempt.outcome = "reset"
        except (BrokenPipeError, ConnectionError, OSError) as exc:
            attempt.outcome, attempt.detail = "socket_error", repr(exc)
        if not keep or self.rng.random() < NEW_CONNECTION_CHANCE:
            conn.close()
            self.conn = None

    async def _response(self, conn: _Conn, attempt: Attempt, method: str) -> tuple[str, bool]:
        """(outcome, whether the connection may be kept)."""
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            return ("truncated_head" if exc.partial else "closed_without_response"), False
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if status != 200:
            return f"status_{status}", False
        try:
            if method == "HEAD":
                body = b""
            elif "content-length" in fields:
                body = await conn.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding") == "chunked":
                body = await _chunked(conn.reader)
            else:
                return "no_framing", False
        except asyncio.IncompleteReadError:
            return "truncated_body", False
        if method != "HEAD" and f" {attempt.rid} ".encode() not in body[:64]:
            attempt.detail = body[:64].decode("latin-1")
            return "wrong_body", False
        return "ok", fields.get("connection") != "close"

    async def _abort(self, attempt: Attempt) -> None:
        """A fresh connection, left early on purpose (the kept connection is not spoiled)."""
        try:
            conn = await self._open()
        except (TimeoutError, OSError):
            attempt.outcome = "aborted"
            return
        attempt.conn_opened = conn.opened
        try:
            if attempt.kind == "abort_half_head":
                conn.writer.write(self._head(attempt, "GET", 64)[:20])
            elif attempt.kind == "abort_after_send":
                conn.writer.write(self._head(attempt, "GET", 64))
            else:  # abort_mid_body: read the head and a little of a big body, then leave
                conn.writer.write(self._head(attempt, "GET", BIG_BODY))
                await conn.writer.drain()
                await asyncio.wait_for(conn.reader.read(1024), CLIENT_TIMEOUT)
            await conn.writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            conn.close()
        attempt.outcome = "aborted"


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while True:  # bounded by the reader's data and the caller's timeout
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
