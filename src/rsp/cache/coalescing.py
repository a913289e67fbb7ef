"""Coalescing: one fetch per URI per machine (like nginx's proxy_cache_lock and Varnish's waiting list), compiled
(native_modules.txt). A miss claims its URI in the store (a mark every worker sees) and fetches it; a miss that
finds the URI claimed waits, at most LOCK_HOLD for the response's head (nginx's proxy_cache_lock_timeout, 5 s;
then it goes to the backend itself):

- in the fetcher's process it joins the fetch's waiting list (rsp.cache.waiting_list) and gets the response as
  it streams;
- in another process it says so on the spools' board and polls, from POLL_FIRST to POLL_MAX apart, and at once
  when the fetcher creates or writes the URI's spool (rsp.cache.wakeups): once the fetcher writes a spool
  (rsp.cache.spool) it streams the response from it, head and parts as they come; a spool that holds the
  fetch's outcome (a 304, a backend error) answers it as the fetcher's process answers its waiters; when the
  fetch ended before it saw one, it is answered from the store.

The fetcher looks at the board when its head is admitted, and every WATCH seconds after (one timer per process
looks for all its fetches), and spools only when a waiter wants it: a stored miss nobody else waits for makes
no system call for it. A fetch whose response cannot be stored marks its URI PASS for
PASS_TTL, so that the requests after it go to the backend side by side instead of one after the other.

A stale stored response that must be validated is fetched the same way (a revalidation is a claimed fetch
too): the first request claims the URI and sends the conditional request, the others wait. A 200 streams to
them as a miss's response does; a 304 freshens the stored response and `settle` answers the waiters in this
process from the store at once (those of other processes through an outcome spool); a backend error lets
`settle` answer them with the stale response where stale-if-error or grace allow it for each. A waiter of a
revalidation accepts what was confirmed or fetched after it arrived even when the stored response says
no-cache or is stale again (the origin validated it during the request: RFC 9111 §4.2.4, §5.2.2.4); a request
that asks for its own validation (no-cache, max-age, min-fresh: §5.2.1) may lead one but never waits for one
under way (`alone`); released, a waiter sends its own conditional request (`conditional`).

CacheCore (rsp.cache.cache_core) owns one `Coalescer`: it hands it a miss (`coalesce`) and the fetcher's
response (`start`, `data`, `end`, `close`); what the Coalescer needs of the core is a look-up of the store
that answers a waiter (`from_store`) and where to report a store failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from rsp.cache.conditional import CLIENT_VALIDATORS, any_present, validators
from rsp.cache.entry import StoredResponse
from rsp.cache.exchange_state import CTX_KEY, FETCH, LOOKED_UP, POLL_FIRST, REVALIDATE, WAITING, ExchangeState
from rsp.cache.freshness import current_age
from rsp.cache.reuse import VALIDATE, reuse
from rsp.cache.spool import (
    DATA,
    END,
    FAIL,
    FINAL,
    FRESH,
    HEAD,
    OUTCOMES,
    STALE,
    SpoolReader,
    Spools,
    decode_head,
    head_record,
    outcome_time,
    record,
    spool_dir,
)
from rsp.cache.stats import CacheStats
from rsp.cache.store import BUSY, CLAIMED, CacheStore
from rsp.cache.vary import matches
from rsp.cache.waiting_list import Admit, WaitingList
from rsp.cache.wakeups import Poll, Wakeups
from rsp.errors import CacheStoreError
from rsp.logs import get_logger
from rsp.pipeline.messages import LocalReply, Request, Response, header_values
from rsp.pipeline.phases import SUSPEND, ExchangeView, Verdict

__all__ = ["LOCK_HOLD", "PASS_TTL", "POLL_FIRST", "POLL_MAX", "Coalescer", "conditional", "usable"]

LOCK_HOLD: Final = 5.0
PASS_TTL: Final = 10.0
POLL_MAX: Final = 0.05
# How often a process looks whether a waiter in another process wants one of its fetches spooled (after the
# look at the fetch's head), and for how many looks the timer stays armed with no fetch to look at.
WATCH: Final = POLL_MAX
WATCH_IDLE: Final = 20
# Request fields whose answer is likely one no other request can use (a 304 to the client's own validator,
# a 206 for its range): such a miss neither waits for nor holds its URI's fetch.
UNSHARED_ANSWERS: Final = (b"if-none-match", b"if-modified-since", b"range")
# The label a waiter's head carries (CacheCore's HIT).
_HIT: Final = b"HIT"

# What the core gives: the stored response answering a waiter now, or None (nothing usable stored yet).
FromStore = Callable[[ExchangeView, ExchangeState, float], LocalReply | None]
StoreFailed = Callable[[CacheStoreError], None]
CallLater = Callable[[float, Callable[[], None]], object]

_log = get_logger()


def usable(use: str, entry: StoredResponse, state: ExchangeState) -> bool:
    """Whether a waiter may be answered with `entry` (`use`: what rsp.cache.reuse says of it for the waiter's
    request): when reuse allows it, or when the waiter revalidates and `entry` was confirmed (a 304) or
    fetched after it arrived: the origin validated it during the request, which is what no-cache and a stale
    response's must-revalidate ask for (RFC 9111 §5.2.2.4, §4.2.4; such a waiter has no no-cache, max-age or
    min-fresh of its own: `Coalescer.coalesce`'s `alone`)."""
    return use != VALIDATE or (state.revalidates and entry.response_time >= state.request_time)


def conditional(request: Request, state: ExchangeState, entry: StoredResponse) -> None:
    """Make `request` the validation of the stored `entry` (RFC 9111 §4.3.1): our If-None-Match /
    If-Modified-Since instead of the client's, which are set aside (answered after a 304, §4.3.2)."""
    state.kind = REVALIDATE
    headers = request.headers
    state.client = [(name, value) for name in CLIENT_VALIDATORS for value in header_values(headers, name)]
    for name in CLIENT_VALIDATORS:
        request.set(name, None)
    for name, value in validators(entry.headers):
        request.set(name, value)


class Coalescer:
    """The fetches of one cache's URIs and the misses waiting for them. `header` / `spelt`: the X-Cache-like
    field's lower-case name and its configured spelling (b"" for none); `call_later(delay, callback)`: the
    timer a waiting miss polls with (the running loop's when None); `from_store` / `stale_for`: what answers a
    waiter after a 304 / after a backend error (rsp.cache.cache_core)."""

    def __init__(self, store: CacheStore, clock: Callable[[], float], call_later: CallLater | None,
                 stats: CacheStats, header: bytes, spelt: bytes, from_store: FromStore, stale_for: FromStore,
                 failed: StoreFailed, max_object: int) -> None:
        self.store = store
        self.spools = Spools(spool_dir(store.path), max_object)
        self.wakeups = Wakeups(self.spools.directory)  # (its add_reader: the running loop's; tests set theirs)
        self.wakeups.on_board = self._spool_wanted  # (a waiter in another process came after a fetch's head)
        self._watching = False  # the look at the board for this process's fetches is armed (_watch)
        self._idle = 0
        self.clock = clock
        self.stats = stats
        self.header = header
        self.spelt = spelt
        self.from_store = from_store
        self.stale_for = stale_for
        self.failed = failed
        self._call_later = call_later
        self.waiting = WaitingList(self.release, self.later, LOCK_HOLD)

    def coalesce(self, exchange: ExchangeView, state: ExchangeState, present: set[bytes], now: float,
                 alone: bool = False) -> Verdict:
        """A miss (or a stale entry's revalidation): fetch it (holding the URI's mark), or wait for the fetch
        under way. `present`: the request's field names, lower-case. `alone`: never wait (a request wanting a
        validation of its own), though others may wait for this one's."""
        if exchange.request.method != b"GET" or state.request_cc.no_store or state.no_store or any_present(
                present, UNSHARED_ANSWERS):
            return None  # nothing another request could reuse: no reason to wait or to make others wait
        if not alone and self.waiting.join(state.url, exchange):
            state.kind = WAITING
            return SUSPEND  # a fetch in this process: its response streams to us (rsp.cache.waiting_list)
        try:
            claim: int | None = self.store.claim(state.url, now, LOCK_HOLD)
        except CacheStoreError as exc:
            self.failed(exc)
            claim = None
        if claim == CLAIMED:
            state.locked = state.fetching = True
            self.waiting.open(state.url, exchange)
            return None
        if claim != BUSY or alone:
            return None  # PASS, or the store failed, or it wants a validation of its own
        state.kind = WAITING  # a fetch in another process: follow its spool, or poll the store
        state.deadline = now + LOCK_HOLD
        self.spools.call(state.url)
        self.wait(exchange, state)
        return SUSPEND

    # ---- the fetcher's side ----------------------------------------------------------------------------------

    def start(self, state: ExchangeState, pending: StoredResponse, body_length: int) -> None:
        """The fetch's response head shows it may be stored: its head to the waiters in this process, and into
        a spool when a waiter in another process wants one (rsp.cache.spool); a waiter that comes later is
        seen by the watch (`_look`)."""
        self.waiting.start(state.url, self.admit(pending, body_length))
        if self.spools.wanted(state.url):
            self._spool(state, pending, body_length, b"")
        if not self._watching:
            self._watch()

    def data(self, state: ExchangeState, chunk: bytes, keep: bool) -> None:
        """A part of the fetch's body; `keep`: the store still collects it (else the waiters that have no
        head yet go to the backend; those that stream get all of it, here and through the spool, which keeps
        no more of it than max_object: rsp.cache.spool)."""
        self.waiting.data(state.url, chunk, keep)
        out = state.spool_out
        if out is not None and not out.data(chunk):
            state.spool_out = None
            out.fail()

    def end(self, state: ExchangeState) -> None:
        """The fetch's body is complete (and stored, when it could be)."""
        state.fetching = False
        self.waiting.end(state.url)
        self._finish_spool(state, True)

    def settle(self, state: ExchangeState, stale: bool) -> None:
        """The fetch's answer is the stored response: a 304 freshened it, or (`stale`) the backend failed and
        the stale one may stand in where stale-if-error or grace allow it. Each waiter in this process is
        answered with what that gives it now (`from_store`, `stale_for`), or goes to the backend; the waiters of
        other processes that want it are told through a spool (FRESH, STALE: rsp.cache.spool), which wakes them
        (rsp.cache.wakeups), and answer the same way (`_told`) rather than finding the store freshened at their
        next poll, or going to the backend after an error, each on its own."""
        state.fetching = False
        now = self.clock()
        answer = self.stale_for if stale else self.from_store
        for exchange in self.waiting.take(state.url):
            waiter = exchange.ctx.get(CTX_KEY)
            reply = answer(exchange, waiter, now) if isinstance(waiter, ExchangeState) else None
            if reply is None:
                self.release(exchange)
            else:
                self.stats.coalesced += 1
                exchange.answer(reply)
        spools = self.spools
        if spools.asked(state.url) and spools.tell(state.url, STALE if stale else FRESH, now):
            spools.unwant(state.url)
            if not self._watching:
                self._watch()  # (its look removes the outcome's file after OUTCOME_KEEP)

    def close(self, state: ExchangeState) -> None:
        """The fetch ended without a response to share, or failed: its waiters go on without it."""
        state.fetching = False
        self.waiting.close(state.url)
        self._finish_spool(state, False)

    def _finish_spool(self, state: ExchangeState, complete: bool) -> None:
        """The fetch is over: its spool (if one was written) gets its END (`complete`) or FAIL record, and
        the URI is no longer wanted on the board."""
        out = state.spool_out
        if out is not None:
            state.spool_out = None
            if complete:
                out.end()
            else:
                out.fail()
            self.spools.unwant(state.url)

    def _spool(self, state: ExchangeState, pending: StoredResponse, body_length: int, body: bytes) -> None:
        try:
            first = head_record(pending, body_length)
        except ValueError:
            return  # a field no parsed message has: not stored, so nothing to spool either
        state.spool_out = self.spools.create(state.url, first + record(DATA, body) if body else first, len(body))

    def _watch(self) -> None:
        """Look at the board for this process's fetches every WATCH seconds while there are some, and for
        WATCH_IDLE looks after (consecutive misses then share one timer instead of arming one each)."""
        call_later = self._call_later
        if call_later is None:
            try:
                call_later = asyncio.get_running_loop().call_later
            except RuntimeError:  # no loop runs this (a benchmark driving the session by hand): no watch
                self._watching = True
                return
        self._watching = True
        call_later(WATCH, self._look)
        if self.wakeups.fd < 0:  # (once per process: then a waiter's call on the board wakes it, _spool_wanted)
            self.wakeups.watch()

    def _look(self) -> None:
        """A waiter in another process may have come after a fetch's head (the fetch's body parts do not look:
        a stored miss nobody waits for then pays for one look at the board, at its head): its fetch spools
        from now on, starting with the head and the body so far."""
        self._watching = False
        kept = self.spools.expire(self.clock()) if self.spools.kept else 0
        if self.waiting.fetches:
            self._idle = 0
            self._spool_wanted()
        elif not kept:
            self._idle += 1
            if self._idle > WATCH_IDLE:
                return
        try:
            self._watch()
        except Exception as exc:  # a loop callback: log, and look again when a fetch starts
            _log.error("cache: cannot watch the fetches for waiters in other workers: %s", exc)

    def _spool_wanted(self) -> None:
        """Spool the fetches past their head that a waiter in another process wants (the watch's look, or at
        once when that waiter calls on the board: rsp.cache.wakeups)."""
        for url, fetch in list(self.waiting.fetches.items()):
            state = fetch.fetcher.ctx.get(CTX_KEY)
            response = fetch.fetcher.response
            if (fetch.admit is None or not isinstance(state, ExchangeState) or state.spool_out is not None
                    or response is None or not state.fetching):
                continue  # no head yet (its start looks), spooling already, or done
            pending = state.pending
            if pending is not None and self.spools.asked(url):
                self._spool(state, pending, response.body_length, b"".join(state.chunks))

    # ---- waiters in another process ---------------------------------------------------------------------------

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        call_later = self._call_later or asyncio.get_running_loop().call_later
        call_later(delay, callback)

    def wait(self, exchange: ExchangeView, state: ExchangeState) -> None:
        """Poll again after `state.delay`, or as soon as the fetch's spool is created or written
        (rsp.cache.wakeups), whichever comes first."""
        poll = Poll(lambda: self.poll(exchange, state))
        self.later(state.delay, poll)
        self.wakeups.add(state.url, poll)

    def release(self, exchange: ExchangeView) -> None:
        """A waiter the fetch does not answer: to the backend itself (with its own conditional request when it
        revalidates a stored response)."""
        state = exchange.ctx.get(CTX_KEY)
        if isinstance(state, ExchangeState):
            entry = state.entry
            if state.revalidates and entry is not None:
                conditional(exchange.request, state, entry)
            else:
                state.kind = FETCH
        exchange.resume()

    def admit(self, pending: StoredResponse, body_length: int) -> Admit:
        """The head a waiter gets of the response being fetched, or None when it cannot use it (its Vary
        selecting fields differ, its request directives want a fresher one): a HIT, as from the store."""
        def admit(exchange: ExchangeView) -> Response | None:
            state = exchange.ctx.get(CTX_KEY)
            if not isinstance(state, ExchangeState) or not matches(pending.selecting, exchange.request.headers):
                return None
            age = current_age(pending.initial_age, pending.response_time, self.clock())
            if not usable(reuse(pending.flags, pending.lifetime, age, state.request_cc), pending, state):
                return None
            state.kind = LOOKED_UP
            self.stats.coalesced += 1
            self.stats.hits += 1
            headers = list(pending.headers)
            headers.append((b"Age", str(int(age)).encode()))
            if self.header:
                headers.append((self.spelt, _HIT))
            return Response(pending.status, headers, body_length, pending.reason)
        return admit

    def poll(self, exchange: ExchangeView, state: ExchangeState) -> None:
        """A waiting miss, on the loop: follow the fetch's spool once there is one (a fetch in another
        process, rsp.cache.spool), or answer from the store once the fetch stored its response; go to the
        backend once the fetch ended without storing, or after LOCK_HOLD; else say a spool is wanted and wait
        a little longer."""
        try:
            spool = state.spool_in
            if spool is None:
                spool = state.spool_in = self.spools.open(state.url)
            if spool is not None and self._follow(exchange, state, spool):
                return
            now = self.clock()
            reply = self.from_store(exchange, state, now)
            if reply is not None:
                self.spools.unwant(state.url)  # (done: see rsp.cache.spool on clearing)
                self.stats.coalesced += 1
                exchange.answer(reply)
                return
            if now < state.deadline and self._mark(state.url, now) == BUSY:
                self.spools.want(state.url)  # (again: another process that was done with it may have cleared it)
                state.delay = min(state.delay * 2, POLL_MAX)
                self.wait(exchange, state)
                return
        except Exception as exc:  # a loop callback: nothing above would answer the client, so go on below
            _log.error("cache: waiting for a fetch of %r failed: %s: %s", state.url, type(exc).__name__, exc)
            spool = state.spool_in
            if spool is not None:
                state.spool_in = None
                spool.close()
                if spool.answered:
                    exchange.answer_reset("the fetch this response streamed from cannot be followed")
                    return
        if state.spool_in is None:
            self.spools.unwant(state.url)
        self.release(exchange)

    def _follow(self, exchange: ExchangeView, state: ExchangeState, spool: SpoolReader) -> bool:
        """Stream another process's fetch to the waiter from its spool: the head (or to the backend when the
        waiter cannot use it), what the spool holds of the body, then more as it comes, polling from
        POLL_FIRST to POLL_MAX apart (at once while a read finds a full READ_SIZE); or answer as its outcome
        says (a 304, an error: `_told`). False when the spool is an outcome older than the waiter (of a fetch
        before the one it waits for): the caller polls the store."""
        records = spool.read()
        if records and records[0][0] in OUTCOMES and not spool.answered:
            self._unfollow(state, spool)
            kind, payload = records[0]
            if outcome_time(payload) < state.request_time:
                return False
            self._told(exchange, state, kind == STALE)
            return True
        if not records and spool.writer_gone():
            records = spool.read()  # the fetch may have ended between the two
            if not records or records[-1][0] not in FINAL:
                spool.discard()  # a dead fetcher's (its worker was killed mid-fetch)
                records.append((FAIL, b""))
        body: list[bytes] = []
        for kind, payload in records:
            if kind == HEAD and not spool.answered:
                entry, length = decode_head(payload)
                spool.holes = length < 0  # (only such a body can outgrow the spool's bound)
                head = self.admit(entry, length)(exchange) if entry.url == state.url else None
                if head is None:  # another variant, or the waiter wants a fresher one
                    self._unfollow(state, spool)
                    self.release(exchange)
                    return True
                exchange.answer_head(head)
                spool.answered = True
            elif kind == DATA and payload:
                body.append(payload)
            elif kind != DATA:  # END, FAIL; or no HEAD first (a hole where it was: this reader opened late)
                self._unfollow(state, spool)
                if not spool.answered:
                    self.release(exchange)
                elif kind == END:
                    exchange.answer_data(b"".join(body), True)
                else:  # as the fetcher's own client is (a failed fetch; or this reader fell behind the spool's bound)
                    exchange.answer_reset("the fetch this response streamed from failed")
                return True
        if body:
            exchange.answer_data(b"".join(body), False)
        state.delay = 0.0 if spool.full else POLL_FIRST if records else min(state.delay * 2, POLL_MAX)
        self.wait(exchange, state)
        return True

    def _told(self, exchange: ExchangeView, state: ExchangeState, stale: bool) -> None:
        """The fetch in another process ended with the stored response as its answer (an outcome record): this
        waiter is answered as a waiter in the fetcher's process is (`settle`), or goes to the backend."""
        self.spools.unwant(state.url)  # (done: see rsp.cache.spool on clearing)
        reply = (self.stale_for if stale else self.from_store)(exchange, state, self.clock())
        if reply is None:
            self.release(exchange)
        else:
            self.stats.coalesced += 1
            exchange.answer(reply)

    @staticmethod
    def _unfollow(state: ExchangeState, spool: SpoolReader) -> None:
        state.spool_in = None
        spool.close()

    def _mark(self, url: bytes, now: float) -> int | None:
        try:
            return self.store.mark(url, now)
        except CacheStoreError as exc:
            self.failed(exc)
            return None

    def unlock(self, state: ExchangeState, pass_for: float) -> None:
        """Give the URI's mark back (PASS for `pass_for` seconds when > 0), if this exchange holds it."""
        if state.locked:
            state.locked = False
            try:
                self.store.release(state.url, self.clock(), pass_for)
            except CacheStoreError as exc:
                self.failed(exc)
