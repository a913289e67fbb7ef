"""Readiness callbacks without a Python call per event: rsp's epoll poller and the loop iteration around it.

Why: on uvloop every readiness event of a socket runs through libuv's poll handle, a Handle, a context switch
of contextvars, the GIL taken back for the callback and a Python-level call of a bound method; with a small
keep-alive request that is two events per request, a noticeable share of the proxy's CPU (figures in
docs/performance.md). Here the loop iteration itself is compiled (native_modules.txt): one `epoll.poll` per
iteration, and each event of an rsp socket is a native method call on its `Watcher`.

Two ways to register: asyncio's shape (`add_reader`/`add_writer` per descriptor, level-triggered; the TCP
relay and the listeners), and edge-triggered watches (`watch`; HTTP streams, see the comment there).
Callbacks run from the loop, and an exception in one reaches the loop's exception handler.

Everything else (timers, `call_soon`, transports, servers, subprocesses, signals) is the standard library's
`SelectorEventLoop` (rsp.transport.event_loop), whose selector shares the one epoll descriptor: `_iterate`
below is its `_run_once` (CPython 3.11, base_events.py) with rsp's watchers dispatched inline.

`Io` is the registration interface the transports use, so the same code runs on any asyncio loop
(`LoopIo`: uvloop in some tests, the stdlib loop elsewhere) and on rsp's loop (`Poller`).
"""

from __future__ import annotations

import asyncio
import heapq
import select
import time
from collections.abc import Callable
from typing import Any, Final

# asyncio's selector masks (selectors.EVENT_READ, EVENT_WRITE).
_EVENT_READ: Final = 1
_EVENT_WRITE: Final = 2
_EPOLLIN: Final = select.EPOLLIN
_EPOLLOUT: Final = select.EPOLLOUT
_EPOLLEXCLUSIVE: Final = select.EPOLLEXCLUSIVE
# An edge-triggered watch (Poller.watch): every event of the socket, reported once per change of state.
EDGE_EVENTS: Final = select.EPOLLIN | select.EPOLLOUT | select.EPOLLRDHUP | select.EPOLLET
# What an edge may carry: data or its end (EPOLLRDHUP: the peer shut its side, EPOLLHUP: both sides are
# shut, EPOLLERR: a pending error that the next read or write reports), and room to write.
EDGE_READ: Final = select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
EDGE_HANGUP: Final = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
EDGE_WRITE: Final = select.EPOLLOUT | select.EPOLLHUP | select.EPOLLERR
_monotonic: Final = time.monotonic
# Events taken per epoll_wait. More wait in the kernel's ready list for the next call, which then does
# not sleep (nothing is lost, edge-triggered or not). select.epoll allocates 12 bytes per slot on every
# call: 40 slots stay within Python's small-object allocator (512 bytes), and a busy iteration serves far
# fewer events than that (docs/performance.md).
MAX_EVENTS: Final = 40
# asyncio's own limits (base_events.py): never sleep longer than a day; purge cancelled timers when more
# than half of at least 100 are cancelled.
MAXIMUM_SELECT_TIMEOUT: Final = 24 * 3600.0
_MIN_SCHEDULED_TIMER_HANDLES: Final = 100
_MIN_CANCELLED_TIMER_HANDLES_FRACTION: Final = 0.5


class Watcher:
    """A descriptor's owner: the poller calls these when it is readable or writable (native calls)."""

    __slots__ = ()

    def on_readable(self) -> None:
        pass

    def on_writable(self) -> None:
        pass

    def on_edge(self, events: int) -> None:
        """An edge-triggered watch (Poller.watch) saw `events` (EDGE_READ and EDGE_WRITE bits)."""


class CallbackWatcher(Watcher):
    """A watcher made of plain callables, for interpreted code (tests, tools): an interpreted class cannot
    subclass a compiled one."""

    __slots__ = ("_edge", "_readable", "_writable")

    def __init__(self, readable: Callable[[], None] | None = None, writable: Callable[[], None] | None = None,
                 edge: Callable[[int], None] | None = None) -> None:
        self._readable = readable
        self._writable = writable
        self._edge = edge

    def on_readable(self) -> None:
        if self._readable is not None:
            self._readable()

    def on_writable(self) -> None:
        if self._writable is not None:
            self._writable()

    def on_edge(self, events: int) -> None:
        if self._edge is not None:
            self._edge(events)


class Io:
    """Where a transport registers its readiness callbacks (asyncio's add_reader/add_writer contract)."""

    __slots__ = ()

    def add_reader(self, fd: int, watcher: Watcher) -> None:
        raise NotImplementedError

    def remove_reader(self, fd: int) -> None:
        raise NotImplementedError

    def add_writer(self, fd: int, watcher: Watcher) -> None:
        raise NotImplementedError

    def remove_writer(self, fd: int) -> None:
        raise NotImplementedError


class LoopIo(Io):
    """Any asyncio loop: the watcher's methods become ordinary reader and writer callbacks."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def add_reader(self, fd: int, watcher: Watcher) -> None:
        self.loop.add_reader(fd, watcher.on_readable)

    def remove_reader(self, fd: int) -> None:
        self.loop.remove_reader(fd)

    def add_writer(self, fd: int, watcher: Watcher) -> None:
        self.loop.add_writer(fd, watcher.on_writable)

    def remove_writer(self, fd: int) -> None:
        self.loop.remove_writer(fd)


class Poller(Io):
    """rsp's registrations on the loop's epoll descriptor, indexed by descriptor number.

    The selector of the same loop registers asyncio's own descriptors on the same epoll object; a
    descriptor belongs to one or the other (`masks[fd] != 0` means ours), never both.
    """

    __slots__ = ("_deferred", "_dispatching", "_edges", "_ep", "_fd_to_key", "_last", "_masks", "_readers",
                 "_stale", "_writers", "now")

    def __init__(self, ep: select.epoll, fd_to_key: dict[Any, Any]) -> None:
        self._ep = ep
        self._fd_to_key = fd_to_key  # the selector's descriptor -> SelectorKey map, for asyncio's events
        self._readers: list[Watcher | None] = []
        self._writers: list[Watcher | None] = []
        self._masks: list[int] = []
        # Descriptors unregistered while a batch of events is dispatched: the batch may still hold events
        # of theirs, which must not reach a new socket that got the same number meanwhile.
        self._stale: set[int] = set()
        self._dispatching = False
        # Edge-triggered watches (watch()), by descriptor, and the watchers that asked to be called again
        # in the next iteration (defer()).
        self._edges: list[Watcher | None] = []
        self._deferred: list[Watcher] = []
        # Watchers to call once more at the end of this iteration, after the ready callbacks (call_last()).
        self._last: list[Watcher] = []
        # time.monotonic() when the last epoll_wait returned: the time of everything this iteration does
        # (nginx caches its time per event-loop iteration the same way, HAProxy has now_ms).
        self.now = _monotonic()

    def owns(self, fd: int) -> bool:
        return fd < len(self._masks) and self._masks[fd] != 0

    def interest(self, fd: int) -> int:
        """The epoll events registered for `fd` (EPOLLIN for a reader, EPOLLOUT for a writer), 0 if none."""
        return self._masks[fd] if fd < len(self._masks) else 0

    def add_reader(self, fd: int, watcher: Watcher) -> None:
        self._grow(fd)
        self._readers[fd] = watcher
        self._update(fd)

    def remove_reader(self, fd: int) -> None:
        if fd < len(self._readers):
            self._readers[fd] = None
            self._update(fd)

    def add_exclusive_reader(self, fd: int, watcher: Watcher) -> None:
        """A reader of a descriptor that other processes' epolls watch too (a listening socket shared by
        the workers): EPOLLEXCLUSIVE wakes one of the waiting workers per new connection instead of all of
        them (Linux 4.5; nginx does the same when it has no accept mutex). Level-triggered like add_reader;
        only remove_reader may follow (EPOLLEXCLUSIVE cannot be modified, epoll_ctl(2))."""
        self._grow(fd)
        self._readers[fd] = watcher
        self._masks[fd] = _EPOLLIN
        try:
            self._ep.register(fd, _EPOLLIN | _EPOLLEXCLUSIVE)
        except FileExistsError:  # a closed descriptor's registration, its number reused: start afresh
            self._ep.unregister(fd)
            self._ep.register(fd, _EPOLLIN | _EPOLLEXCLUSIVE)

    def add_writer(self, fd: int, watcher: Watcher) -> None:
        self._grow(fd)
        self._writers[fd] = watcher
        self._update(fd)

    def remove_writer(self, fd: int) -> None:
        if fd < len(self._writers):
            self._writers[fd] = None
            self._update(fd)

    # -- edge-triggered watches ----------------------------------------------------------------------
    # A socket registered once for everything (EDGE_EVENTS) and never modified: pausing reads or waiting
    # to write costs no epoll_ctl, and the kernel does not re-check the socket on every epoll_wait after
    # it was reported, as it does for a level-triggered registration. The price is the watcher's: an edge
    # is reported once, so it must read until the socket is drained (a short read or EAGAIN), or remember
    # that it is not (and defer() to continue in the next iteration). nginx and HAProxy poll the same way.

    def watch(self, fd: int, watcher: Watcher) -> None:
        self._grow(fd)
        # A closed descriptor's level-triggered callbacks, if its owner never removed them, are not this
        # socket's.
        self._readers[fd] = self._writers[fd] = None
        self._edges[fd] = watcher
        self._masks[fd] = EDGE_EVENTS
        try:
            self._ep.register(fd, EDGE_EVENTS)
        except FileExistsError:
            self._ep.modify(fd, EDGE_EVENTS)

    def forget(self, fd: int) -> None:
        """Stop watching `fd`, which its owner is about to close (closing removes it from epoll, so no
        epoll_ctl is spent here)."""
        if fd < len(self._edges) and self._edges[fd] is not None:
            self._edges[fd] = None
            self._masks[fd] = 0
            if self._dispatching:
                self._stale.add(fd)

    def defer(self, watcher: Watcher) -> None:
        """Call watcher.on_edge(EPOLLIN) in the next iteration (after this one's events, without waiting)."""
        self._deferred.append(watcher)

    def call_last(self, watcher: Watcher) -> None:
        """Call watcher.on_edge(EPOLLIN) at the end of this iteration, after the callbacks that were ready
        (where asyncio's call_soon from an event would have run it), without an asyncio Handle: how a
        closed stream delivers connection_lost (rsp.transport.stream)."""
        self._last.append(watcher)

    def has_deferred(self) -> bool:
        return len(self._deferred) != 0 or len(self._last) != 0

    def run_last(self, loop: Any) -> None:
        last = self._last
        self._last = []
        for watcher in last:
            _run_edge(watcher, _EPOLLIN, loop)

    def run_deferred(self, loop: Any) -> None:
        deferred = self._deferred
        self._deferred = []
        for watcher in deferred:
            _run_edge(watcher, _EPOLLIN, loop)

    def _grow(self, fd: int) -> None:
        while len(self._masks) <= fd:
            self._readers.append(None)
            self._writers.append(None)
            self._edges.append(None)
            self._masks.append(0)

    def _update(self, fd: int) -> None:
        new = (_EPOLLIN if self._readers[fd] is not None else 0) | (_EPOLLOUT if self._writers[fd] is not None else 0)
        old = self._masks[fd]
        if new == old:
            return
        self._masks[fd] = new
        if new == 0:
            if self._dispatching:
                self._stale.add(fd)
            try:
                self._ep.unregister(fd)
            except OSError:
                pass  # already closed: closing a descriptor removes it from epoll
        elif old == 0:
            try:
                self._ep.register(fd, new)
            except FileExistsError:
                # A closed descriptor whose number came back before we saw it go: take it over.
                self._ep.modify(fd, new)
        else:
            try:
                self._ep.modify(fd, new)
            except FileNotFoundError:
                self._ep.register(fd, new)

    def poll(self, timeout: float, loop: Any) -> None:
        """Wait up to `timeout` seconds (-1: no limit), run rsp's watchers, hand asyncio's events to `loop`."""
        events = self._ep.poll(timeout, MAX_EVENTS)
        self.now = _monotonic()
        if not events:
            return
        theirs: list[tuple[Any, int]] = []
        readers = self._readers
        writers = self._writers
        edges = self._edges
        masks = self._masks
        stale = self._stale
        self._dispatching = True
        try:
            for fd, ev in events:
                if fd < len(masks) and masks[fd] != 0:
                    if stale and fd in stale:
                        continue
                    watcher = edges[fd]
                    if watcher is not None:
                        _run_edge(watcher, ev, loop)
                        continue
                    # The selectors module's reading of epoll's bits: anything but EPOLLOUT alone (data,
                    # hang-up, error) wakes the reader, anything but EPOLLIN alone the writer.
                    if ev & ~_EPOLLOUT:
                        reader = readers[fd]
                        if reader is not None:
                            _run(reader, True, loop)
                    if ev & ~_EPOLLIN:
                        writer = writers[fd]  # read again: the reader may have stopped writing or closed
                        if writer is not None and not (stale and fd in stale):
                            _run(writer, False, loop)
                else:
                    key = self._fd_to_key.get(fd)
                    if key is None:
                        continue
                    mask = 0
                    if ev & ~_EPOLLIN:
                        mask |= _EVENT_WRITE
                    if ev & ~_EPOLLOUT:
                        mask |= _EVENT_READ
                    theirs.append((key, mask & key.events))
        finally:
            self._dispatching = False
            if stale:
                stale.clear()
        if theirs:
            loop._process_events(theirs)


def _run(watcher: Watcher, readable: bool, loop: Any) -> None:
    """One callback; a bug in it reaches the loop's exception handler (as with a Handle), not the loop."""
    try:
        if readable:
            watcher.on_readable()
        else:
            watcher.on_writable()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop.call_exception_handler({
            "message": f"Exception in {'reader' if readable else 'writer'} callback of {watcher!r}",
            "exception": exc,
        })


def _run_edge(watcher: Watcher, events: int, loop: Any) -> None:
    try:
        watcher.on_edge(events)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:
        loop.call_exception_handler({"message": f"Exception in event callback of {watcher!r}", "exception": exc})


def poller_of(loop: asyncio.AbstractEventLoop) -> Poller | None:
    """The loop's own poller (rsp.transport.event_loop), or None for any other asyncio loop."""
    poller = getattr(loop, "rsp_poller", None)
    return poller if isinstance(poller, Poller) else None


def io_for(loop: asyncio.AbstractEventLoop) -> Io:
    """The loop's own poller when it has one, else its add_reader/add_writer."""
    poller = poller_of(loop)
    return poller if poller is not None else LoopIo(loop)


def run_once(loop: Any, poller: Poller) -> None:
    """One iteration of `loop` (what asyncio.BaseEventLoop._run_once does)."""
    _iterate(loop, poller, loop._ready, loop._scheduled, loop._clock_resolution)


def run_until_stopped(loop: Any, poller: Poller) -> None:
    """The body of run_forever(): iterations until loop.stop(), without a Python frame per iteration.

    The ready queue and the heap of timers are the same objects for the loop's whole life (BaseEventLoop
    creates them once, and only _run_once, which this replaces, ever rebuilt the heap), so they are read once.
    """
    ready = loop._ready
    scheduled: list[Any] = loop._scheduled
    resolution: float = loop._clock_resolution
    while True:
        _iterate(loop, poller, ready, scheduled, resolution)
        if loop._stopping:
            break


def _iterate(loop: Any, poller: Poller, ready: Any, scheduled: list[Any], resolution: float) -> None:
    """asyncio.BaseEventLoop._run_once of CPython 3.11, with the poller's wait and dispatch.

    Differences, all deliberate: the loop's clock is read as time.monotonic() (what its time() returns):
    before the wait only when a timer decides the timeout, and timers fall due against the poller's `now`
    (read once when the wait returns, before any callback ran); the heap of timers is purged in place;
    watchers that deferred work run right after the poll, and those that asked call_last() after the ready
    callbacks; debug mode's slow-callback warnings are not produced.
    """
    count = len(scheduled)
    if count != 0:
        if (count > _MIN_SCHEDULED_TIMER_HANDLES
                and loop._timer_cancelled_count / count > _MIN_CANCELLED_TIMER_HANDLES_FRACTION):
            # Too many cancelled timers: rebuild the heap without them.
            kept: list[Any] = []
            for handle in scheduled:
                if handle._cancelled:
                    handle._scheduled = False
                else:
                    kept.append(handle)
            heapq.heapify(kept)
            scheduled[:] = kept
            loop._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0]._cancelled:
                loop._timer_cancelled_count -= 1
                handle = heapq.heappop(scheduled)
                handle._scheduled = False

    timeout = -1.0
    if ready or poller.has_deferred() or loop._stopping:
        timeout = 0.0
    elif scheduled:
        when: float = scheduled[0]._when
        timeout = when - _monotonic()
        if timeout < 0.0:
            timeout = 0.0
        elif timeout > MAXIMUM_SELECT_TIMEOUT:
            timeout = MAXIMUM_SELECT_TIMEOUT
    poller.poll(timeout, loop)
    if len(poller._deferred) != 0:
        poller.run_deferred(loop)

    # Timers that are due join the ready queue.
    if scheduled:
        end_time = poller.now + resolution
        while scheduled:
            due: float = scheduled[0]._when
            if due >= end_time:
                break
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            ready.append(handle)

    # Run what is ready now, not what these callbacks schedule (that waits for the next poll).
    for _ in range(len(ready)):
        handle = ready.popleft()
        if handle._cancelled:
            continue
        handle._run()
    if len(poller._last) != 0:
        poller.run_last(loop)
