"""rsp's event loop: the standard library's epoll loop, with its iteration and rsp's sockets compiled.

`RspEventLoop` is an `asyncio.SelectorEventLoop` on an `EpollSelector` whose `_run_once` is
rsp.transport.poller.run_once: everything asyncio offers (timers, transports, servers, subprocesses,
signals, executors) works as on the standard loop, and rsp's sockets (HTTP streams, TCP relay, listeners)
register on its `rsp_poller` instead of through Handles.

It reaches into CPython internals (`_ready`, `_scheduled`, `Handle._run`, the selector's epoll object), so it
runs only on the CPython versions in SUPPORTED_VERSIONS, with epoll (Linux). `choose_loop` decides, as a pure
function of those facts, which loop rsp runs on and why; `new_event_loop` builds it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import selectors
import sys
import threading
from dataclasses import dataclass
from typing import Final

from rsp.errors import ConfigError, StartupError
from rsp.transport.poller import Poller, run_once, run_until_stopped


class RspEventLoop(asyncio.SelectorEventLoop):
    def __new__(cls) -> RspEventLoop:
        # Refused before the object exists (a half-built loop's __del__ would fail on its missing state).
        why = rsp_loop_unsupported(current_platform(with_uvloop=False))
        if why:
            raise StartupError(why)
        return super().__new__(cls)

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


# The CPython (major, minor) versions whose event-loop internals RspEventLoop and rsp.transport.poller copy
# (BaseEventLoop.run_forever and _run_once of 3.11). Another version may change them silently: add it here
# only after comparing its asyncio/base_events.py and events.py with the copies.
SUPPORTED_VERSIONS: Final = ((3, 11),)
SUPPORTED_IMPLEMENTATION: Final = "cpython"
# sys.implementation.name as people write it, for the log line.
IMPLEMENTATION_NAMES: Final = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy"}

# RSP_LOOP picks the event loop: "rsp" (the default where it can run), "uvloop", or "asyncio" (the standard
# library's).
LOOP_ENV: Final = "RSP_LOOP"
LOOP_RSP: Final = "rsp"
LOOP_UVLOOP: Final = "uvloop"
LOOP_ASYNCIO: Final = "asyncio"
LOOP_CHOICES: Final = (LOOP_RSP, LOOP_UVLOOP, LOOP_ASYNCIO)


@dataclass(frozen=True, slots=True)
class Platform:
    """The facts the loop choice depends on (see `current_platform`)."""

    implementation: str  # sys.implementation.name
    version: tuple[int, int]  # (major, minor)
    has_epoll: bool
    has_uvloop: bool


@dataclass(frozen=True, slots=True)
class LoopChoice:
    kind: str  # one of LOOP_CHOICES
    reason: str  # why rsp's own loop was not taken although it was wanted; "" otherwise


def current_platform(*, with_uvloop: bool = True) -> Platform:
    """This interpreter's facts (whether uvloop is installed only when `with_uvloop`; else False)."""
    major, minor = sys.version_info[:2]
    return Platform(
        implementation=sys.implementation.name,
        version=(major, minor),
        has_epoll=has_epoll(),
        has_uvloop=with_uvloop and importlib.util.find_spec("uvloop") is not None,
    )


def _supported_names() -> str:
    return " and ".join(f"{major}.{minor}" for major, minor in SUPPORTED_VERSIONS)


def rsp_loop_unsupported(platform: Platform) -> str:
    """Why rsp's own loop cannot run on `platform`, or "" when it can."""
    if platform.implementation != SUPPORTED_IMPLEMENTATION or platform.version not in SUPPORTED_VERSIONS:
        name = IMPLEMENTATION_NAMES.get(platform.implementation, platform.implementation)
        running = f"{name} {platform.version[0]}.{platform.version[1]}"
        return f"rsp's event loop supports CPython {_supported_names()} only; running on {running}"
    if not platform.has_epoll:
        return "rsp's event loop needs epoll (Linux), which this system lacks"
    return ""


def choose_loop(requested: str, platform: Platform) -> LoopChoice:
    """The loop to run on: `requested` (RSP_LOOP's value, "" when unset) if it can run, else the best
    fallback, uvloop then asyncio's, with the reason. Raises ConfigError for a request that cannot be met."""
    if requested and requested not in LOOP_CHOICES:
        raise ConfigError(f"{LOOP_ENV}={requested!r}: expected one of {', '.join(LOOP_CHOICES)}")
    if requested == LOOP_ASYNCIO:
        return LoopChoice(LOOP_ASYNCIO, "")
    if requested == LOOP_UVLOOP:
        if not platform.has_uvloop:
            raise ConfigError(f"{LOOP_ENV}=uvloop: uvloop is not installed")
        return LoopChoice(LOOP_UVLOOP, "")
    why = rsp_loop_unsupported(platform)
    if not why:
        return LoopChoice(LOOP_RSP, "")
    fallback = LOOP_UVLOOP if platform.has_uvloop else LOOP_ASYNCIO
    return LoopChoice(fallback, f"{why}: using {fallback}")


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new loop of `kind` (a LoopChoice.kind)."""
    if kind == LOOP_RSP:
        return RspEventLoop()
    if kind == LOOP_UVLOOP:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


def loop_from_environment() -> tuple[asyncio.AbstractEventLoop, LoopChoice]:
    """The loop RSP_LOOP asks for on this platform, and the choice made (its reason is worth a log line)."""
    choice = choose_loop(os.environ.get(LOOP_ENV, ""), current_platform())
    return new_event_loop(choice.kind), choice


def has_epoll() -> bool:
    return hasattr(selectors, "EpollSelector")
