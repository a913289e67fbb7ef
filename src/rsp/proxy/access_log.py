"""The HTTP access log: one line per request, nginx's `combined` format (default) or JSON.

Lines are collected in memory and written in batches from the server's housekeeping tick (and at exit),
so a busy proxy makes one write() per tick rather than one per request. The combined line is nginx's:

    $remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"

exactly, so that log tools that parse combined keep working. The JSON format adds the backend, the
upstream time and the total time (seconds, millisecond precision; null when no backend was reached).
"""

from __future__ import annotations

import json
import time
from typing import Final

from rsp.http1.events import RequestHead
from rsp.logsink import LogSink

# Flush early when this much is waiting, so a burst cannot grow the buffer without bound.
FLUSH_BYTES: Final = 64 * 1024


class AccessLog:
    __slots__ = ("_buffered", "_lines", "_out", "_stamp", "_stamp_second", "fmt")

    def __init__(self, fmt: str, path: str = "") -> None:
        self.fmt = fmt
        # Never blocks the proxy: a stuck destination costs dropped lines, counted (rsp.logsink).
        self._out: LogSink | None = None
        if fmt != "off":
            self._out = LogSink(path, 1)
        self._lines: list[str] = []
        self._buffered = 0
        self._stamp_second = -1
        self._stamp = ""

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def _time_local(self, now: float) -> str:
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second))
        return self._stamp

    def request(self, client: str, head: RequestHead, status: int, sent: int, backend: str,
                upstream_time: float, total_time: float, now: float) -> None:
        if self._out is None:
            return
        referer = agent = b""
        for name, value in head.headers:
            lower = name.lower()
            if lower == b"referer":
                referer = value
            elif lower == b"user-agent":
                agent = value
        method = head.method.decode("latin-1")
        target = head.target.decode("latin-1")
        if self.fmt == "json":
            line = json.dumps({
                "time": self._time_local(now), "client": client, "method": method, "target": target,
                "version": "HTTP/" + head.version.decode(), "host": head.host.decode("latin-1"),
                "status": status, "bytes": sent, "backend": backend,
                "upstream_time": round(upstream_time, 3) if upstream_time >= 0 else None,
                "total_time": round(total_time, 3), "referer": referer.decode("latin-1"),
                "user_agent": agent.decode("latin-1"),
            })
        else:
            line = (f'{client} - - [{self._time_local(now)}] "{method} {target} HTTP/{head.version.decode()}" '
                    f'{status} {sent} "{_quote(referer)}" "{_quote(agent)}"')
        self._append(line)

    def refused(self, client: str, status: int) -> None:
        """A request refused before it was understood (no method or target to show), like nginx's 400 lines."""
        if self._out is None:
            return
        if self.fmt == "json":
            line = json.dumps({"time": self._time_local(time.time()), "client": client, "method": None,
                               "target": None, "status": status, "bytes": 0, "backend": None,
                               "upstream_time": None, "total_time": 0.0})
        else:
            line = f'{client} - - [{self._time_local(time.time())}] "-" {status} 0 "-" "-"'
        self._append(line)

    def _append(self, line: str) -> None:
        self._lines.append(line)
        self._buffered += len(line) + 1
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._out is None:
            return
        if not self._lines:
            self._out.flush()  # what a stuck destination left waiting
            return
        text = "\n".join(self._lines) + "\n"
        self._lines.clear()
        self._buffered = 0
        self._out.write(text)  # never raises for a full disk or a closed pipe: the sink counts the loss

    def close(self) -> None:
        self.flush()
        if self._out is not None:
            self._out.close()


def _quote(value: bytes) -> str:
    """nginx escapes `"`, `\\` and non-printable bytes as \\xHH in log fields."""
    if not value:
        return "-"
    out = []
    for b in value:
        if b == 0x22 or b == 0x5C or b < 0x20 or b >= 0x7F:
            out.append(f"\\x{b:02X}")
        else:
            out.append(chr(b))
    return "".join(out)


