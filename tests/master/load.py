"""A bounded HTTP load loop for the reload tests: threads of keep-alive clients that count what went wrong.

Each client keeps its connection while the proxy allows it and opens a new one when a response says
`Connection: close` (RFC 9112 §9.6: the proxy closes after that response). It never retries: a refused
connection, a reset, a connection closed without a response, a timeout or a 5xx is an error.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from support.http_client import HttpConn, ResponseError

# Each client's requests are bounded (and the whole run by `deadline`), so a stuck proxy ends the loop.
MAX_REQUESTS_PER_CLIENT = 200_000
CLIENT_TIMEOUT = 10.0


@dataclass
class LoadResult:
    ok: int = 0
    connections: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


class Load:
    def __init__(self, port: int, clients: int = 4, deadline: float = 300.0) -> None:
        self.port = port
        self.stop_event = threading.Event()
        self.deadline = time.monotonic() + deadline
        self.results = [LoadResult() for _ in range(clients)]
        self.threads = [threading.Thread(target=self._client, args=(r,), daemon=True) for r in self.results]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(CLIENT_TIMEOUT * 2)
        total = LoadResult()
        for r in self.results:
            total.ok += r.ok
            total.connections += r.connections
            total.errors.update(r.errors)
            total.examples += r.examples[:3]
        return total

    def served(self) -> int:
        """Requests answered so far (each client thread only adds to its own count)."""
        return sum(r.ok for r in self.results)

    def wait_served(self, more: int, timeout: float = 30.0) -> None:
        """Wait until `more` requests beyond those answered now are answered: the load is flowing."""
        target = self.served() + more
        deadline = time.monotonic() + timeout
        while self.served() < target:
            assert time.monotonic() < deadline, f"load stalled at {self.served()} of {target} requests"
            time.sleep(0.01)

    def _client(self, result: LoadResult) -> None:
        conn: HttpConn | None = None
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop_event.is_set() or time.monotonic() > self.deadline:
                break
            try:
                if conn is None:
                    conn = HttpConn(self.port, timeout=CLIENT_TIMEOUT)
                    result.connections += 1
                response = conn.request("GET", "/", "example.com")
            except ConnectionRefusedError as exc:
                self._error(result, "refused", exc)
                conn = None
                continue
            except ConnectionResetError as exc:
                self._error(result, "reset", exc)
            except ResponseError as exc:
                self._error(result, "no response", exc)
            except OSError as exc:
                self._error(result, type(exc).__name__, exc)
            else:
                if response.status >= 500:
                    self._error(result, f"status {response.status}", response)
                else:
                    result.ok += 1
                if (response.header("connection") or "").lower() != "close":
                    continue
            if conn is not None:
                conn.close()
            conn = None
        if conn is not None:
            conn.close()

    @staticmethod
    def _error(result: LoadResult, kind: str, what: object) -> None:
        result.errors[kind] += 1
        if len(result.examples) < 3:
            result.examples.append(f"{kind}: {what!r}")
