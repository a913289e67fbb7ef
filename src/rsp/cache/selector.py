"""Which cache, if any, serves an exchange: `cache = "NAME"` on a route wins over the listener's.

A listener whose routes name caches gets one CacheSelector; it finds the request's route with the router's
own rules (rsp.routes.router: first match by host, path prefix and method, after rewrite, as routing does)
and hands every phase of the exchange to that route's CacheFilter (or the listener's, for a route without
`cache` and for a request no route matches).
"""

from __future__ import annotations

from rsp.cache.cache_filter import SELECTED, CacheFilter
from rsp.config.model import Route
from rsp.pipeline.phases import ExchangeView, Filter, Verdict
from rsp.routes.router import host_matches, host_only

__all__ = ["SELECTED", "CacheSelector"]


class CacheSelector(Filter):
    name = "cache"

    def __init__(self, routes: tuple[tuple[Route, CacheFilter | None], ...], default: CacheFilter | None) -> None:
        self.routes = routes
        self.default = default

    def pick(self, host: bytes, path: bytes, method: bytes) -> CacheFilter | None:
        name = host_only(host)
        path_text = path.decode("latin-1")
        method_text = method.decode("latin-1")
        for route, flt in self.routes:
            if (host_matches(route.host, name) and path_text.startswith(route.path_prefix)
                    and (not route.methods or method_text in route.methods)):
                return flt
        return self.default

    def access(self, exchange: ExchangeView) -> Verdict:
        request = exchange.request
        flt = self.pick(request.authority, request.path, request.method)
        if flt is None:
            return None
        exchange.ctx[SELECTED] = flt
        return flt.access(exchange)

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        flt = exchange.ctx.get(SELECTED)
        return flt.header_filter(exchange) if isinstance(flt, CacheFilter) else None

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        flt = exchange.ctx.get(SELECTED)
        return flt.body_filter(exchange, chunk, last) if isinstance(flt, CacheFilter) else chunk

    def log(self, exchange: ExchangeView) -> None:
        flt = exchange.ctx.get(SELECTED)
        if isinstance(flt, CacheFilter):
            flt.log(exchange)

    def client_left(self, exchange: ExchangeView) -> bool:
        flt = exchange.ctx.get(SELECTED)
        return flt.client_left(exchange) if isinstance(flt, CacheFilter) else False
