"""What a finished exchange leaves behind: its counters (rsp.metrics) and its access log line. One job, apart
from the exchange's own (moving a request and its response): the exchange calls these once, when it ends."""

from __future__ import annotations

import time

from rsp.http1.events import RequestHead
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_state import SessionState
from rsp.upstream.records import BackendRecord


def count_outcome(proxy: SessionState, pool: PoolRuntime, record: BackendRecord | None, status: int,
                  upstream_started: float) -> None:
    """The listener's response count; the backend's count and response time when one was chosen, else the
    pool's count of requests answered without a backend."""
    proxy.stats.responses.count(status)
    if record is not None:
        stats = record.stats
        stats.responses.count(status)
        elapsed = proxy.now() - upstream_started
        stats.response_time.observe(elapsed if elapsed > 0.0 else 0.0)
    else:
        pool.stats.unserved.count(status)


def log_access(proxy: SessionState, client_ip: str, head: RequestHead, status: int, sent_bytes: int,
               record: BackendRecord | None, upstream_started: float, started: float) -> None:
    """The access log line, when the log is on (its times: the exact clock, see Exchange.started); `record`:
    the backend that served, or None ("-")."""
    if not proxy.access_log.enabled:
        return
    now = proxy.clock()
    backend = record.spec.address if record is not None else "-"
    proxy.access_log.request(client_ip, head, status, sent_bytes, backend,
                             now - upstream_started if upstream_started else -1.0, now - started, time.time())
