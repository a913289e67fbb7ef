"""Who paces the reading of a backend's response: the exchange's own client, or, for a fetch that other
exchanges stream from (a response cache's waiters, ExchangeView.follow), the slowest of those once the
fetch's own client went away (a detached exchange, rsp.proxy.background.detach).

rsp reads a backend only as fast as the response can be passed on (backpressure): a client that is behind
pauses the backend connection's reading until it has caught up.
"""

from __future__ import annotations

from rsp.proxy.session_api import ExchangeSide


def pace_by_client(exchange: ExchangeSide, behind: bool) -> None:
    """`exchange`'s client is behind (True) or caught up: the backend's reading pauses meanwhile. A client
    that streams another exchange's response has no backend of its own: it paces that exchange's instead,
    once that one has no client of its own (pace_by_follower)."""
    upstream = exchange.upstream
    if upstream is not None:
        if behind:
            upstream.pause_reading()
        else:
            upstream.resume_reading()
        return
    source = exchange.source
    if source is not None and exchange.behind != behind:
        exchange.behind = behind
        source.follower_behind(behind)


def pace_by_follower(exchange: ExchangeSide, behind: bool) -> None:
    """An exchange streaming `exchange`'s response has a client that is behind, or caught up. While
    `exchange` has its own client, that client paces the backend (a slower follower's client has the rest
    buffered); once detached, the slowest follower does: the backend is read only while none is behind."""
    exchange.followers_behind += 1 if behind else -1
    upstream = exchange.upstream
    if exchange.detached and upstream is not None:
        if exchange.followers_behind > 0:
            upstream.pause_reading()
        else:
            upstream.resume_reading()


def stop_following(exchange: ExchangeSide) -> None:
    """`exchange` ends: as a follower, it no longer holds its source back."""
    source = exchange.source
    if source is not None and exchange.behind:
        exchange.behind = False
        source.follower_behind(False)
