"""Whether a request whose backend connection failed is sent again, and where (sans-IO: plain facts in, a
verdict out; rsp.proxy.exchange acts on it).

A request is sent again only when that is safe: an idempotent method (RFC 9110 §9.2.2), no request body
(whose bytes are not kept), and a connection that died before any response byte (a reset or an EOF, not a
protocol error: RFC 9112 §9.3.1). A kept-alive connection the backend had closed is retried once on a fresh
connection to the same backend (routine, not a failure); any other such death goes to another backend
within the pool's `retries` plus what a balancer filter allowed (HAProxy's `option redispatch`).
"""

from __future__ import annotations

from typing import Final

# RFC 9110 §9.2.2: methods whose repetition has the same effect; only these are retried (and only without
# a body, whose bytes we do not keep).
IDEMPOTENT: Final = frozenset({b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"})

# The verdicts.
ANSWER: Final = 0  # no new try: answer the client (502)
RETRY_FRESH: Final = 1  # the same backend again, on a new connection
RETRY_OTHER: Final = 2  # another backend (the failed one is excluded)


def next_try(method: bytes, has_body: bool, silent: bool, stale: bool, retried_fresh: bool,
             another_allowed: bool) -> int:
    """What to do after a try failed before any response byte reached the client. `silent`: the connection
    died before any response head (not a protocol error); `stale`: it was a kept-alive one (reused) and
    silent; `retried_fresh`: the fresh retry was used already; `another_allowed`: a backend failed and fewer
    backends failed this request than the pool's retries plus a balancer filter's extra tries allow."""
    if not silent or has_body or method not in IDEMPOTENT:
        return ANSWER
    if stale and not retried_fresh:
        return RETRY_FRESH
    if another_allowed:
        return RETRY_OTHER
    return ANSWER
