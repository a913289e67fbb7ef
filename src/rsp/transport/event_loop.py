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

from rsp.transport.poller import Poller, run_once


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
