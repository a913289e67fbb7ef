"""CacheCore: the response cache's work in each phase, compiled (native_modules.txt); rsp.cache.cache_filter's
CacheFilter is the Filter the pipeline sees, and hands every phase straight to this (a compiled class cannot
derive from the interpreted Filter, docs/architecture.md "The compiled hot path"). The phases:

    access         look the request up; a fresh (or acceptably stale) hit answers with a LocalReply (304 when
                   the client's own conditional matches); a stale entry with validators turns the request
                   into a conditional one (RFC 9111 §4.3.1); only-if-cached without a usable entry is 504
    header_filter  a 304 to our validation: the stored response, freshened (§4.3.4), replaces it; otherwise
                   decide whether the response may be stored (§3) and start collecting its body; an unsafe
                   method's non-error response invalidates (§4.4)
    body_filter    collect up to max_object and store at the end; after a freshening 304, emit the stored body
    log            give a coalesced URI back when its fetch failed

Also: concurrent misses for one URI wait for one fetch (SUSPEND, rsp.cache.coalescing): in this process they
join its waiting list and get the response as it streams (rsp.cache.waiting_list), else they poll the store;
a stale response within stale-while-revalidate or the configured grace is served at once while one background
request refreshes it (RFC 5861 §3, ExchangeView.background), and stands in for a backend error within
stale-if-error or grace (RFC 5861 §4); PURGE from the configured addresses removes a URI; a Lua handler's
ngx.var.rsp_cache_key / _bypass / _no_store / _ttl steer the key, the lookup, storing and the lifetime
(rsp.pipeline.cache_vars).

The per-exchange state lives in `exchange.ctx["cache"]`. Times come from `clock` (wall-clock seconds, the
same in every process sharing the store). A store failure (CacheStoreError) never fails an exchange: it goes
on as if there were no cache, and the error is logged once per process.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from typing import Final, TypeVar

from rsp.cache.admission import admit, lower_name
from rsp.cache.coalescing import LOCK_HOLD as LOCK_HOLD  # (the coalescing figures, re-exported)
from rsp.cache.coalescing import PASS_TTL as PASS_TTL
from rsp.cache.coalescing import POLL_FIRST as POLL_FIRST
from rsp.cache.coalescing import POLL_MAX as POLL_MAX
from rsp.cache.coalescing import Coalescer, conditional, usable
from rsp.cache.conditional import (
    CLIENT_VALIDATORS,
    ORIGIN_ONLY,
    any_present,
    not_modified,
    not_modified_headers,
    origin_only,
    validators,
)
from rsp.cache.directives import CacheControl, parse_cache_control, request_cache_control
from rsp.cache.entry import MUST_REVALIDATE, StoredResponse, field_lines, primary_key
from rsp.cache.exchange_state import BYPASSED as _BYPASS
from rsp.cache.exchange_state import CTX_KEY as CTX_KEY
from rsp.cache.exchange_state import FETCH as _MISS
from rsp.cache.exchange_state import FRESHENED as _FRESHENED
from rsp.cache.exchange_state import INVALIDATE as _INVALIDATE
from rsp.cache.exchange_state import LOOKED_UP as _LOOKED_UP
from rsp.cache.exchange_state import REVALIDATE as _REVALIDATE
from rsp.cache.exchange_state import ExchangeState, steer
from rsp.cache.freshen import freshened, head_contradicts, selects
from rsp.cache.freshness import current_age
from rsp.cache.invalidation import SAFE_METHODS, invalidated
from rsp.cache.reuse import FRESH, STALE_OK, VALIDATE, reuse, while_revalidating
from rsp.cache.stats import CacheStats
from rsp.cache.store import CLAIMED, CacheStore
from rsp.cache.vary import matches
from rsp.config.model import CacheSettings
from rsp.errors import CacheStoreError
from rsp.logs import get_logger
from rsp.pipeline.cache_vars import CACHE_KEY, CTX_CACHE_VARS
from rsp.pipeline.messages import (
    Header,
    LocalReply,
    Request,
    header_get,
    header_set,
    header_values,
)
from rsp.pipeline.phases import ExchangeView, Verdict

_R = TypeVar("_R")
# The ctx entry naming the filter of an exchange when a CacheSelector chose it (rsp.cache.selector); a
# background refresh carries it, since no access phase (where the selector chooses) runs for one.
SELECTED: Final = "cache.filter"
# What the X-Cache-like header says (docs/cache.md).
HIT: Final = b"HIT"  # a fresh stored response
STALE: Final = b"STALE"  # a stale one: the client accepted it (max-stale) or it stands in for a backend error
MISS: Final = b"MISS"  # fetched from the backend (stored or not)
REVALIDATED: Final = b"REVALIDATED"  # a stale one the backend confirmed with 304
BYPASS: Final = b"BYPASS"  # not looked up: a precondition only the origin can evaluate
# The request fields request_cache_control reads; without them a request has no directives (shared, read-only).
REQUEST_DIRECTIVE_FIELDS: Final = (b"cache-control", b"pragma")
NO_DIRECTIVES: Final = CacheControl()
# The method that removes a URI from the cache (Varnish's, nginx's ngx_cache_purge, Squid's).
PURGE: Final = b"PURGE"
# A backend's (or rsp's own 502/503/504) answer a stale response may stand in for (RFC 5861 §4: "an error").
ERROR_STATUSES: Final = frozenset({500, 502, 503, 504})

_log = get_logger()


class CacheCore:
    """What CacheFilter does, phase by phase (rsp.cache.cache_filter gives the pipeline these methods)."""

    def __init__(self, settings: CacheSettings, store: CacheStore, clock: Callable[[], float] = time.time,
                 call_later: Callable[[float, Callable[[], None]], object] | None = None) -> None:
        """`call_later(delay, callback)`: the timer a waiting miss polls with (the running loop's by default;
        tests pass their own)."""
        self.settings = settings
        self.store = store
        self.clock = clock
        self.header = settings.header.lower().encode() if settings.header else b""
        self.spelt = settings.header.encode()  # as configured, on the wire
        # What every stored miss reads of the settings, as native attributes (the settings are an interpreted
        # frozen dataclass: each read would be a generic attribute lookup).
        self.max_object: int = settings.max_object
        self.heuristic: bool = settings.heuristic
        self.cookies: bool = settings.cookies
        self.purgers = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in settings.purge)
        self._failed = False
        self.stats = CacheStats()
        self.coalescer = Coalescer(store, clock, call_later, self.stats, self.header, self.spelt, self._from_store,
                                   self._stale_for, self._store_failed, settings.max_object)
        self.waiting = self.coalescer.waiting
        # Each label's line, after a hit's stored lines (entry.field_lines).
        self.label_lines: dict[bytes, bytes] = {label: self.spelt + b": " + label + b"\r\n"
                                                for label in (HIT, STALE, MISS, REVALIDATED, BYPASS)}
        self.owner: object = self  # the filter the pipeline knows this by (CacheFilter sets itself: SELECTED)

    # ---- request side -------------------------------------------------------------------------------------

    def access(self, exchange: ExchangeView) -> Verdict:
        request = exchange.request
        ctx = exchange.ctx
        seeded = ctx.get(CTX_KEY)
        if isinstance(seeded, ExchangeState) and seeded.background:
            return None  # a refresh this filter started: already decided (_refresh)
        steered = ctx.get(CTX_CACHE_VARS)  # what a Lua handler set (ngx.var.rsp_cache_*), usually nothing
        key = steered.get(CACHE_KEY) if isinstance(steered, dict) else None
        url = key if key is not None else primary_key(request.scheme, request.authority, request.target)
        now = self.clock()
        if request.method not in (b"GET", b"HEAD"):
            if request.method == PURGE and self.purgers:
                return self._purge(exchange, url)
            if request.method not in SAFE_METHODS:
                exchange.ctx[CTX_KEY] = ExchangeState(_INVALIDATE, url, CacheControl(), now)
            return None
        present = {lower_name(name) for name, _ in request.headers}  # one pass, then set tests instead of scans
        request_cc = (request_cache_control(header_values(request.headers, b"cache-control"),
                                            header_values(request.headers, b"pragma"))
                      if any_present(present, REQUEST_DIRECTIVE_FIELDS) else NO_DIRECTIVES)
        state = ExchangeState(_MISS, url, request_cc, now)
        ctx[CTX_KEY] = state
        if any_present(present, ORIGIN_ONLY) and origin_only(request.headers):
            state.kind = _BYPASS
            return None
        if isinstance(steered, dict):
            steer(state, steered)
            if state.bypassed:
                return None  # to the backend without a lookup (the response may still be stored)
        entry = self._select(url, request.headers)
        if entry is None:
            return (self._gateway_timeout(state) if request_cc.only_if_cached
                    else self.coalescer.coalesce(exchange, state, present, now))
        age = current_age(entry.initial_age, entry.response_time, now)
        use = reuse(entry.flags, entry.lifetime, age, request_cc)
        if use != VALIDATE:
            state.kind = _LOOKED_UP
            self._touch(entry)
            return self._answer(entry, request.method, request.headers, present, age,
                                HIT if use == FRESH else STALE)
        if request_cc.only_if_cached:  # §5.2.1.7: it would need the origin
            return self._gateway_timeout(state)
        state.entry = entry  # kept for stale-if-error / grace, should the backend fail
        if self._refresh(exchange, state, entry, age, now):
            state.kind = _LOOKED_UP
            self._touch(entry)
            return self._answer(entry, request.method, request.headers, present, age, STALE)
        if not validators(entry.headers):  # cannot be validated: fetched in full (coalesced as a miss is),
            return self.coalescer.coalesce(exchange, state, present, now)  # the new response replaces it
        # One conditional request per machine: the first claims the URI, the others wait for its 304 or 200
        # (rsp.cache.coalescing). A request asking for its own validation (no-cache, max-age, min-fresh:
        # RFC 9111 §5.2.1.4, §5.2.1.1, §5.2.1.3) does not wait for one sent before it arrived.
        state.revalidates = True
        alone = (request_cc.no_cache or request_cc.max_age is not None or request_cc.min_fresh is not None)
        verdict = self.coalescer.coalesce(exchange, state, present, now, alone)
        if verdict is None:
            conditional(request, state, entry)
        return verdict

    def _refresh(self, exchange: ExchangeView, state: ExchangeState, entry: StoredResponse, age: float,
                 now: float) -> bool:
        """Stale-while-revalidate (RFC 5861 §3, or the configured grace): True when the stale `entry` may
        answer now. Then one background fetch per machine refreshes it: this exchange starts one when it can
        claim the URI (the claim coalesces it with ordinary misses of the URI, in every worker), else a fetch
        is under way already (or the last response was not storable, or the store failed: served stale all
        the same)."""
        stored_cc = parse_cache_control(header_values(entry.headers, b"cache-control"))
        window = max(stored_cc.stale_while_revalidate or 0, self.settings.grace)
        if not while_revalidating(entry.flags, entry.lifetime, age, state.request_cc, window):
            return False
        if self._safely(lambda: self.store.claim(state.url, now, LOCK_HOLD)) == CLAIMED:
            refresh = ExchangeState(_MISS, state.url, state.request_cc, now)
            refresh.background = refresh.locked = True
            refresh.no_store, refresh.ttl = state.no_store, state.ttl
            refresh.entry = entry  # stale-if-error / grace still apply to the refresh
            request = exchange.request
            # A GET (a HEAD's refresh too: the body is what is stored), without what only this client's answer
            # could use (its validators, its range); ours when the entry has them (§4.3.1).
            headers = [(name, value) for name, value in request.headers
                       if name.lower() not in CLIENT_VALIDATORS and name.lower() != b"range"]
            checks = validators(entry.headers)
            if checks:
                refresh.kind = _REVALIDATE
                headers.extend(checks)
            fetch = Request(b"GET", request.scheme, request.authority, request.target, headers, request.version)
            try:
                exchange.background(fetch, {CTX_KEY: refresh, SELECTED: self.owner})
            except Exception as exc:  # no way to start it here: served stale all the same, the URI given back
                _log.error("cache: cannot refresh %r in the background: %s: %s", state.url, type(exc).__name__,
                           exc)
                self.coalescer.unlock(refresh, 0.0)
        return True

    def _from_store(self, exchange: ExchangeView, state: ExchangeState, now: float) -> LocalReply | None:
        """What answers a waiting miss from the store now (the fetch it waits for stored a response it can
        use), or None (rsp.cache.coalescing polls)."""
        request = exchange.request
        entry = self._select(state.url, request.headers)
        if entry is None:
            return None
        age = current_age(entry.initial_age, entry.response_time, now)
        use = reuse(entry.flags, entry.lifetime, age, state.request_cc)
        if not usable(use, entry, state):  # (a waiter of a revalidation takes what it confirmed since)
            return None
        state.kind = _LOOKED_UP
        present = {name.lower() for name, _ in request.headers}
        return self._answer(entry, request.method, request.headers, present, age, STALE if use == STALE_OK else HIT)

    def _stale_for(self, exchange: ExchangeView, state: ExchangeState, now: float) -> LocalReply | None:
        """What answers a waiter when the fetch it waited for got a backend error: the stored response, stale,
        where stale-if-error or grace allow it for this waiter (RFC 5861 §4), else None (to the backend)."""
        request = exchange.request
        entry = self._select(state.url, request.headers)
        age = self._stale_on_error(state, entry, now) if entry is not None else None
        if entry is None or age is None:
            return None
        state.kind = _LOOKED_UP
        present = {name.lower() for name, _ in request.headers}
        return self._answer(entry, request.method, request.headers, present, age, STALE)

    def _purge(self, exchange: ExchangeView, url: bytes) -> LocalReply:
        """PURGE from a configured address removes every variant of the URI, in the store every worker uses
        (Varnish's usual `purge` VCL: 200 when done, 405 for anyone else; 404 when nothing was stored)."""
        exchange.ctx[CTX_KEY] = ExchangeState(_LOOKED_UP, url, CacheControl(), 0.0)
        try:
            client = ipaddress.ip_address(exchange.client_ip)
        except ValueError:
            client = None
        if client is None or not any(client in net for net in self.purgers):
            return LocalReply(405, [(b"Content-Type", b"text/plain")], b"PURGE is not allowed from here\n")
        removed = self._safely(lambda: self.store.delete(url)) or 0
        self.stats.purged += removed
        status, text = (200, b"purged %d\n" % removed) if removed else (404, b"not in the cache\n")
        return LocalReply(status, [(b"Content-Type", b"text/plain")], text)

    def _select(self, url: bytes, request_headers: list[Header]) -> StoredResponse | None:
        """The most recent stored variant whose selecting fields match the request (§4.1)."""
        try:  # (not _safely: no closure on every request)
            entries = self.store.lookup(url)
        except CacheStoreError as exc:
            self._store_failed(exc)
            return None
        best: StoredResponse | None = None
        for e in entries:  # usually one, without Vary
            if (best is None or e.response_time > best.response_time) and matches(e.selecting, request_headers):
                best = e
        return best

    def _touch(self, entry: StoredResponse) -> None:
        try:
            self.store.touch(entry)
        except CacheStoreError as exc:
            self._store_failed(exc)

    def _answer(self, entry: StoredResponse, method: bytes, request_headers: list[Header], present: set[bytes],
                age: float, label: bytes) -> LocalReply:
        """The stored response (a 304 if the client's conditional matches, §4.3.2); `present`: its field names."""
        if label == HIT:
            self.stats.hits += 1
        else:
            self.stats.stale += 1
        lines: bytes | None = None
        if any_present(present, CLIENT_VALIDATORS) and not_modified(
                method, request_headers, entry.headers, entry.response_time):
            headers, status, body = not_modified_headers(entry.headers), 304, b""
        else:
            headers, status, body = list(entry.headers), entry.status, entry.body
            lines = field_lines(entry)
        age_text = b"%d" % int(age)
        headers.append((b"Age", age_text))  # §5.1: on every response from the cache
        if self.header:
            headers.append((self.spelt, label))
        reply = LocalReply(status, headers, body)
        response = reply.response
        response.reason = entry.reason if status == entry.status else b""
        if lines is not None:  # the stored lines, written once per process, then Age and the label (Response.lines)
            response.lines = (lines + b"Age: " + age_text + b"\r\n" + self.label_lines[label] if self.header
                              else lines + b"Age: " + age_text + b"\r\n")
        return reply

    def _gateway_timeout(self, state: ExchangeState) -> LocalReply:
        state.kind = _LOOKED_UP
        headers: list[Header] = [(b"Content-Type", b"text/plain")]
        if self.header:
            headers.append((self.spelt, MISS))
        return LocalReply(504, headers, b"504 Gateway Timeout: not in the cache (only-if-cached)\n")

    # ---- response side ------------------------------------------------------------------------------------

    def header_filter(self, exchange: ExchangeView) -> Verdict:
        state = exchange.ctx.get(CTX_KEY)
        response = exchange.response
        if not isinstance(state, ExchangeState) or response is None or state.kind == _LOOKED_UP:
            return None
        request = exchange.request
        if state.kind == _INVALIDATE:
            for url in invalidated(request.method, response.status, request.scheme, request.authority,
                                   request.target, response.headers):
                self._delete(url)
            return None
        now = self.clock()
        label = BYPASS if state.kind == _BYPASS or state.bypassed else MISS
        entry = state.entry
        if entry is not None and response.status in ERROR_STATUSES:
            if state.fetching:  # its waiters (in other processes too): the same rules, each for its own request
                self.coalescer.settle(state, True)
            age = self._stale_on_error(state, entry, now)
            if age is not None:
                # While revalidating, the request carries our validators: the client's are set aside.
                conditional = state.client if state.kind == _REVALIDATE else request.headers
                self._replace(exchange, state, entry, age, conditional, STALE)
                return None
        if state.kind == _REVALIDATE and entry is not None:
            if response.status == 304 and selects(entry.headers, response.headers):
                self._freshen(exchange, state, entry, now)
                return None
            if response.status == 304 and not state.client:
                # §4.3.4: a 304 naming another response than the one we validated: the stored one is out of
                # date, and a 304 is no answer to the client's unconditional request (we cannot repeat it).
                self._safely(lambda: self.store.delete(state.url))
                self._bad_gateway(exchange, state)
                return None
            if response.status == 304 or (request.method == b"HEAD" and response.status == 200
                                          and head_contradicts(entry.headers, len(entry.body), response.headers)):
                self._safely(lambda: self.store.delete(state.url))  # §4.3.4 / §4.3.5: the stored one is out of date
            elif request.method == b"HEAD" and response.status == 200:
                self._update(state, entry, response.headers, now)  # §4.3.5: freshen from the HEAD
            state.kind = _MISS
        if state.kind == _MISS:
            self._consider(exchange, state, now)
            pending = state.pending
            if pending is None:  # not stored: the waiters go to the backend (side by side from now on)
                self.coalescer.unlock(state, PASS_TTL if response.status < 500 else 0.0)
                if state.fetching:
                    self.coalescer.close(state)
            elif state.fetching:
                self.coalescer.start(state, pending, response.body_length)
        if label == MISS:
            self.stats.misses += 1
        else:
            self.stats.bypass += 1
        if self.header:
            if header_get(response.headers, self.header) is None:
                response.add(self.spelt, label)  # the usual case: onto the head's bytes, not serialised anew
            else:  # the backend's own field of that name is replaced
                header_set(response.headers, self.header, None)
                response.headers.append((self.spelt, label))
                response.changed = True
        return None

    def _bad_gateway(self, exchange: ExchangeView, state: ExchangeState) -> None:
        response = exchange.response
        assert response is not None
        body = b"502 Bad Gateway: the backend answered 304 for another response than the stored one\n"
        response.status, response.reason = 502, b""
        response.headers = [(b"Content-Type", b"text/plain"), (b"Cache-Control", b"no-store")]
        if self.header:
            response.headers.append((self.spelt, MISS))
        response.body_length = len(body)
        response.changed = True
        state.body = body if exchange.request.method != b"HEAD" else b""
        state.kind = _FRESHENED  # body_filter emits state.body

    def _consider(self, exchange: ExchangeView, state: ExchangeState, now: float) -> None:
        """Start collecting the response for the store when it may be stored (rsp.cache.admission, compiled);
        a handler's no-store refuses it and its TTL stands for the response's freshness lifetime."""
        if state.no_store:
            return
        request, response = exchange.request, exchange.response
        assert response is not None
        state.pending = admit(state.url, request.method, request.headers, state.request_cc, response.status,
                              response.reason, response.headers, response.body_length, state.request_time, now,
                              heuristic=self.heuristic, cookies=self.cookies, max_object=self.max_object,
                              label=self.header, ttl=state.ttl)

    def _update(self, state: ExchangeState, entry: StoredResponse, newer: list[Header], now: float) -> StoredResponse:
        """The stored response with `newer`'s fields (§3.2) and new times, written back."""
        fresh, storable = freshened(entry, newer, state.request_time, now, state.ttl, self.settings.heuristic,
                                    self.header)
        if not storable:
            self._safely(lambda: self.store.delete(entry.url))
        else:  # a coalesced validation gives its URI back in the same write (its waiters find it at once)
            unmark, state.locked = state.locked, False
            if self._safely(lambda: self.store.put(fresh, unmark)) is None and unmark:
                state.locked = True  # the store failed: log gives the URI back
        return fresh

    def _freshen(self, exchange: ExchangeView, state: ExchangeState, entry: StoredResponse, now: float) -> None:
        """§4.3.4: the 304 confirmed the stored response; the client gets it, freshened (or a 304 of its own
        when its set-aside conditional matches the freshened response)."""
        response = exchange.response
        assert response is not None
        fresh = self._update(state, entry, response.headers, now)
        self._replace(exchange, state, fresh, current_age(fresh.initial_age, now, now), state.client, REVALIDATED)
        if state.fetching:  # the requests that waited for this validation: answered from the store (HIT)
            self.coalescer.unlock(state, 0.0)
            self.coalescer.settle(state, False)

    def _replace(self, exchange: ExchangeView, state: ExchangeState, stored: StoredResponse, age: float,
                 conditional: list[Header], label: bytes) -> None:
        """The response becomes `stored` (its body emitted by body_filter), or a 304 when the client's
        `conditional` fields match it."""
        response = exchange.response
        assert response is not None
        method = exchange.request.method
        if conditional and not_modified(method, conditional, stored.headers, stored.response_time):
            response.status, response.reason = 304, b""
            headers, state.body = not_modified_headers(stored.headers), b""
            response.body_length = 0
        else:
            response.status, response.reason, headers = stored.status, stored.reason, list(stored.headers)
            response.body_length = len(stored.body)
            state.body = stored.body if method != b"HEAD" else b""
        headers.append((b"Age", str(int(age)).encode()))
        if self.header:
            headers.append((self.spelt, label))
        if label == REVALIDATED:
            self.stats.revalidated += 1
        else:
            self.stats.stale += 1
        response.headers = headers
        response.changed = True
        state.kind = _FRESHENED

    def _stale_on_error(self, state: ExchangeState, entry: StoredResponse, now: float) -> float | None:
        """The stored response's age when it may stand in for a backend error (RFC 5861 §4 stale-if-error,
        from the response or the request, or the configured grace), else None. must-revalidate,
        proxy-revalidate and s-maxage forbid it (RFC 9111 §4.2.4)."""
        if entry.flags & MUST_REVALIDATE:
            return None
        stored_cc = parse_cache_control(header_values(entry.headers, b"cache-control"))
        allowed = max(stored_cc.stale_if_error or 0, state.request_cc.stale_if_error or 0, self.settings.grace)
        age = current_age(entry.initial_age, entry.response_time, now)
        return age if allowed > 0 and age - entry.lifetime <= allowed else None

    def body_filter(self, exchange: ExchangeView, chunk: bytes, last: bool) -> bytes:
        state = exchange.ctx.get(CTX_KEY)
        if not isinstance(state, ExchangeState):
            return chunk
        if state.kind == _FRESHENED:
            return state.body if last else b""  # a 304 has no content of its own
        pending = state.pending
        if state.fetching:  # the waiters get each part as it comes (in other processes through the spool)
            self.coalescer.data(state, chunk, pending is not None
                                and state.size + len(chunk) <= self.max_object)
        if pending is not None:
            state.size += len(chunk)
            if state.size > self.max_object:  # too big after all (length unknown in advance)
                state.pending, state.chunks = None, []
                self.coalescer.unlock(state, PASS_TTL)
            else:
                if chunk:
                    state.chunks.append(chunk)
                if last:
                    pending.body = b"".join(state.chunks)
                    state.pending, state.chunks = None, []
                    unmark, state.locked = state.locked, False
                    try:  # (not _safely: no closure on every stored miss)
                        done: bool | None = self.store.put(pending, unmark)
                    except CacheStoreError as exc:
                        self._store_failed(exc)
                        done = None
                    self.stats.stored += 1 if done else 0
                    if done is None:
                        self._safely(lambda: self.store.release(pending.url, self.clock()))
        if last and state.fetching:
            self.coalescer.end(state)
        return chunk

    def client_left(self, exchange: ExchangeView) -> bool:
        """The client of this exchange went away: a fetch goes on while its response may still be stored (it
        holds the URI's claim: before its head, or while its body is collected) or while other exchanges wait
        for it or stream from it; it then reads the backend at full pace, under the read timeout and
        max_object (rsp.proxy.background.detach). Anything else ends with its client (an uncacheable or
        oversized response nobody waits for), as nginx ends it (proxy_ignore_client_abort off) and as it
        keeps reading a response it caches; Varnish's fetch never depended on the client at all."""
        state = exchange.ctx.get(CTX_KEY)
        if not isinstance(state, ExchangeState):
            return False
        return state.locked or state.pending is not None or (state.fetching and self.waiting.waited_for(state.url))

    def figures(self) -> dict[str, object]:
        """This process's counters (summed over workers they make the machine's) and the store's machine-wide
        figures under "store" (the same in every worker: take one, never a sum)."""
        store: dict[str, object] = {"evicted_here": self.store.evicted}
        try:
            store.update(bytes=self.store.used(), entries=self.store.count(), budget=self.store.budget)
        except Exception as exc:  # a figure must not fail a scrape; say why instead
            store["error"] = f"{type(exc).__name__}: {exc}"
        return {"name": self.settings.name, **self.stats.as_dict(), "store": store}

    def log(self, exchange: ExchangeView) -> None:
        """The exchange is over: a fetch that never reached its end (the backend failed, the client left)
        gives its URI back to the waiters."""
        state = exchange.ctx.get(CTX_KEY)
        if isinstance(state, ExchangeState):
            if state.fetching:  # the fetch failed: its waiters go on without it
                self.coalescer.close(state)
            if state.locked:
                self.coalescer.unlock(state, 0.0)

    # ---- store failures -----------------------------------------------------------------------------------

    def _delete(self, url: bytes) -> None:
        self._safely(lambda: self.store.delete(url))

    def _safely(self, call: Callable[[], _R]) -> _R | None:
        try:
            return call()
        except CacheStoreError as exc:
            self._store_failed(exc)
            return None

    def _store_failed(self, exc: CacheStoreError) -> None:
        if not self._failed:
            _log.error("%s; going on without the cache", exc)
            self._failed = True
