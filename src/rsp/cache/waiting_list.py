"""The waiting list of a fetch in this process: the misses of its URI that wait for it get its response as it
streams (Varnish's waiting list streams the busy object to its waiters).

A miss that claims its URI (Coalescer.coalesce) opens a `Fetch` here; a later miss of the URI in the same
process joins it instead of polling the store. When the fetcher's response head shows it may be stored, every
waiter that can use it (its Vary selecting fields match, its request directives accept it: `admit`) is
answered with its head at once (ExchangeView.answer_head) and then gets each body part as the fetcher's
exchange receives it (answer_data), so a waiter's client sees the first bytes of a large or slow response
when the fetcher's client does. A waiter that cannot use it, or every waiter when the response may not be
stored, is `released` (it goes to the backend itself). A waiter that joins after the head gets it and the
body so far at once, while the body so far is kept (up to max_object, as the store collects it); past that it
is released. A waiter still without a head after `hold` seconds gives up and is released (nginx's
proxy_cache_lock_timeout, as a waiter on another process's fetch does). A fetch that fails after the head
resets its streaming waiters' clients, as the fetcher's own client is reset.

A miss in another process cannot join this list: it follows the fetch's spool instead, or waits for the
complete object in the store (rsp.cache.coalescing, rsp.cache.spool).
"""

from __future__ import annotations

from collections.abc import Callable

from rsp.pipeline.messages import Response
from rsp.pipeline.phases import ExchangeView

# What the filter gives: the head a waiter gets (None: it cannot use this response), and what to do with a
# waiter the fetch does not answer (send it to the backend).
Admit = Callable[[ExchangeView], Response | None]
Release = Callable[[ExchangeView], None]


class Fetch:
    """One fetch in this process and the exchanges waiting for it."""

    __slots__ = ("admit", "body", "fetcher", "replayable", "streaming", "waiting")

    def __init__(self, fetcher: ExchangeView) -> None:
        self.fetcher = fetcher  # the exchange fetching it (its streaming waiters follow it: ExchangeView.follow)
        self.waiting: list[ExchangeView] = []  # joined, no head yet
        self.streaming: list[ExchangeView] = []  # answered with the head, getting the body as it comes
        self.admit: Admit | None = None  # set once the fetcher's response may be shared (started)
        self.body: list[bytes] = []  # the body so far, for a waiter that joins after the head
        self.replayable = True  # False once the body so far was dropped (over max_object)


class WaitingList:
    """The fetches in this process that other exchanges wait for, by URI. `release(exchange)`: send a waiter
    to the backend itself. `call_later(delay, callback)`: run on the loop later (a waiter that joins after the
    head is answered after its access phase returned SUSPEND; a waiter gives up after `hold` seconds)."""

    __slots__ = ("call_later", "fetches", "hold", "release")

    def __init__(self, release: Release, call_later: Callable[[float, Callable[[], None]], object],
                 hold: float) -> None:
        self.fetches: dict[bytes, Fetch] = {}
        self.release = release
        self.call_later = call_later
        self.hold = hold

    def open(self, url: bytes, fetcher: ExchangeView) -> None:
        """This process's exchange `fetcher` holds the fetch of `url` (it claimed the URI)."""
        self.fetches[url] = Fetch(fetcher)

    def join(self, url: bytes, exchange: ExchangeView) -> bool:
        """Wait for this process's fetch of `url`, if there is one (the caller then returns SUSPEND)."""
        fetch = self.fetches.get(url)
        if fetch is None:
            return False
        if fetch.admit is None:
            fetch.waiting.append(exchange)
            self.call_later(self.hold, lambda: self._give_up(fetch, exchange))
        else:
            self.call_later(0.0, lambda: self._late(fetch, exchange))
        return True

    def _give_up(self, fetch: Fetch, exchange: ExchangeView) -> None:
        if exchange in fetch.waiting:  # still no head: to the backend itself
            fetch.waiting.remove(exchange)
            self.release(exchange)

    def _late(self, fetch: Fetch, exchange: ExchangeView) -> None:
        admit = fetch.admit
        head = admit(exchange) if admit is not None and fetch.replayable else None
        if head is None:
            self.release(exchange)
            return
        exchange.answer_head(head)
        exchange.follow(fetch.fetcher)
        exchange.answer_data(b"".join(fetch.body), False)
        fetch.streaming.append(exchange)

    def waited_for(self, url: bytes) -> bool:
        """Whether exchanges wait for this process's fetch of `url` or stream from it (its client leaving
        then does not end it: CacheFilter.client_left)."""
        fetch = self.fetches.get(url)
        return fetch is not None and bool(fetch.waiting or fetch.streaming)

    def start(self, url: bytes, admit: Admit) -> None:
        """The fetcher's response may be stored: its head to every waiter that can use it."""
        fetch = self.fetches.get(url)
        if fetch is None:
            return
        fetch.admit = admit
        waiting, fetch.waiting = fetch.waiting, []
        for exchange in waiting:
            head = admit(exchange)
            if head is None:
                self.release(exchange)
            else:
                exchange.answer_head(head)
                exchange.follow(fetch.fetcher)
                fetch.streaming.append(exchange)

    def data(self, url: bytes, chunk: bytes, keep: bool) -> None:
        """A part of the fetcher's body; `keep`: the store still collects it (else late joiners cannot be
        given the body so far)."""
        fetch = self.fetches.get(url)
        if fetch is None:
            return
        if keep and fetch.replayable:
            if chunk:
                fetch.body.append(chunk)
        else:
            fetch.replayable, fetch.body = False, []
        if chunk:
            for exchange in fetch.streaming:
                exchange.answer_data(chunk, False)

    def end(self, url: bytes) -> None:
        """The fetcher's body is complete: so are its streaming waiters'."""
        fetch = self.fetches.pop(url, None)
        if fetch is None:
            return
        for exchange in fetch.streaming:
            exchange.answer_data(b"", True)
        waiting, fetch.waiting = fetch.waiting, []  # (none once started; kept for safety)
        for exchange in waiting:
            self.release(exchange)

    def take(self, url: bytes) -> list[ExchangeView]:
        """The fetch of `url` ended with its head unsent (its answer is in the store): its waiters, for the
        caller to answer (a streaming one cannot be: it is reset)."""
        fetch = self.fetches.pop(url, None)
        if fetch is None:
            return []
        for exchange in fetch.streaming:
            exchange.answer_reset("the fetch this response streamed from ended")
        waiting, fetch.waiting = fetch.waiting, []  # (their give-up timers then find nothing to do)
        return waiting

    def close(self, url: bytes) -> None:
        """The fetch ended without a shareable response, or failed: waiters without a head go to the backend,
        streaming ones are reset."""
        fetch = self.fetches.pop(url, None)
        if fetch is None:
            return
        waiting, fetch.waiting = fetch.waiting, []  # (their give-up timers then find nothing to do)
        for exchange in waiting:
            self.release(exchange)
        for exchange in fetch.streaming:
            exchange.answer_reset("the fetch this response streamed from failed")
