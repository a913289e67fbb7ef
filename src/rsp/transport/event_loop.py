"""rsp's event loop: the standard library's epoll loop, with its iteration and rsp's sockets compiled.

`RspEventLoop` is an `asyncio.SelectorEventLoop` on an `EpollSelector` whose `_run_once` is
rsp.transport.poller.run_once: everything asyncio offers (timers, transports, servers, subprocesses,
signals, executors) works as on the standard loop, and rsp's sockets (HTTP streams, TCP relay, listeners)
register on its `rsp_poller` instead of through Handles. Linux only (epoll); `new_event_loop()` falls back
to uvloop or the standard loop elsewhere.
"""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading

from rsp.transport.poller import Poller, run_once, run_until_stopped


class RspEventLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        selector = selectors.EpollSelector()
        # The selector's epoll object and descriptor map (CPython's selectors.EpollSelector internals,
        # stable since 3.4): the poller registers on the same epoll and routes asyncio's events back.
        # Made first: the base class registers its self-pipe while it initialises.
        self.rsp_poller = Poller(selector._selector, selector._fd_to_key)  # type: ignore[attr-defined]
        super().__init__(selector)

    def _run_once(self) -> None:
        run_once(self, self.rsp_poller)

    def run_forever(self) -> None:
        """BaseEventLoop.run_forever of CPython 3.11, with the iterations in compiled code."""
        self._check_closed()  # type: ignore[attr-defined]
        self._check_running()  # type: ignore[attr-defined]
        self._set_coroutine_origin_tracking(self._debug)  # type: ignore[attr-defined]
        old_agen_hooks = sys.get_asyncgen_hooks()
        try:
            self._thread_id = threading.get_ident()
            sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,  # type: ignore[attr-defined]
                                   finalizer=self._asyncgen_finalizer_hook)  # type: ignore[attr-defined]
            asyncio.events._set_running_loop(self)
            run_until_stopped(self, self.rsp_poller)
        finally:
            self._stopping = False
            self._thread_id = None  # type: ignore[assignment]
            asyncio.events._set_running_loop(None)
            self._set_coroutine_origin_tracking(False)  # type: ignore[attr-defined]
            sys.set_asyncgen_hooks(*old_agen_hooks)

    def _add_reader(self, fd: object, callback: object, *args: object) -> object:
        self._check_not_ours(fd)
        return super()._add_reader(fd, callback, *args)  # type: ignore[misc]

    def _add_writer(self, fd: object, callback: object, *args: object) -> object:
        self._check_not_ours(fd)
        return super()._add_writer(fd, callback, *args)  # type: ignore[misc]

    def _check_not_ours(self, fd: object) -> None:
        number = fd if isinstance(fd, int) else fd.fileno()  # type: ignore[attr-defined]
        if self.rsp_poller.owns(number):
            raise RuntimeError(f"descriptor {number} is registered with rsp's poller, not asyncio's")


def has_epoll() -> bool:
    return hasattr(selectors, "EpollSelector")
