"""Where an exchange with filters goes: its pool once the rewrite filters are done (`route`), and each try's
pool and backend once the balancer filters are (`pick_target`).

rsp.proxy.filter_run calls them at their places among the phases (docs/architecture.md, "The request
pipeline") and keeps the run's state: they hold none, read what routing and the filters decided, and set only
the exchange's pool. Compiled (native_modules.txt) like the run: every filtered request and every try calls
them, as native calls over the session's compiled classes.
"""

from __future__ import annotations

import ipaddress

from rsp.errors import PipelineError
from rsp.pipeline.messages import Request
from rsp.proxy.pools import PoolRuntime
from rsp.proxy.session_api import ExchangeSide
from rsp.proxy.session_state import SessionState
from rsp.routes.router import host_only
from rsp.upstream.records import BackendRecord


def route(proxy: SessionState, exchange: ExchangeSide, request: Request | None) -> str | None:
    """The name of the pool for the request as the rewrite filters left it (`request`; None when no filter
    asked for it: the head as parsed): a static rule's, the route store's (the exchange is given that pool
    here: it is none of the listener's), or the default route's. None when the route store has to look the
    host up first: it is asked here, and answers through Exchange.route_to (which may come before this
    returns: the caller marks the run as routing before it calls)."""
    if request is not None:
        authority, target, method = request.authority, request.target, request.method
    else:
        head = exchange.head
        authority, target, method = head.host, head.target, head.method
    router = proxy.router
    name = router.match(authority, target, method)
    if name is not None:
        return name
    host_pools = proxy.host_pools
    if host_pools is None:
        return router.default
    host = host_only(authority)
    found = host_pools.get(host)
    if found is None:
        lookup = proxy.host_lookup
        assert lookup is not None  # set with host_pools (rsp.routestore.client)
        lookup(exchange, host)
        return None
    exchange.pool = found
    return found.name


def pick_target(proxy: SessionState, exchange: ExchangeSide, pool_name: str,
                peer: tuple[str, int] | None) -> BackendRecord | None:
    """This try's target, after the balancer filters: the exchange goes to the pool named `pool_name` and,
    when a filter chose a `peer`, to it: the pool's own backend at that address, or a one-backend pool of its
    own (SessionState.peer_backend), which becomes the exchange's pool. Returns the peer's record, or None
    when the pool's balancer picks. Raises PipelineError when the pool does not exist or the peer is not an
    IP address."""
    pool = _pool_named(proxy, exchange, pool_name)
    if peer is None:
        exchange.pool = pool
        return None
    try:
        ipaddress.ip_address(peer[0])
    except ValueError:
        # As OpenResty's set_current_peer: an address, not a name (no resolving on the loop).
        raise PipelineError(f"a filter chose peer {peer[0]!r}, which is not an IP address") from None
    pool, record = proxy.peer_backend(pool, peer[0], int(peer[1]))
    exchange.pool = pool
    return record


def _pool_named(proxy: SessionState, exchange: ExchangeSide, name: str) -> PoolRuntime:
    """The pool called `name`: the exchange's own without a lookup (a route store's pool is in no table of
    the listener's), else the listener's."""
    if name == exchange.pool.name:
        return exchange.pool
    pool = proxy.pools.get(name)
    if pool is None:
        raise PipelineError(f"a filter chose pool {name!r}, which does not exist")
    return pool
