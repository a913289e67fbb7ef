"""A worker process: today's one-process `Server` on the listening sockets the master bound, with the
master's control channel for what is one per machine (rsp.master.control lists the messages)."""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import signal
import socket
from typing import Any, Final

from rsp.cache.hook import cache_figures
from rsp.filter_wiring import filters_for
from rsp.logs import get_logger, reopen_logs, setup_logging
from rsp.master import control
from rsp.master.backend_state import apply_pools_state
from rsp.master.channel import Channel
from rsp.master.spawn import WORKER_ENV, WorkerFds, read_start
from rsp.proctitle import PREFIX, set_title
from rsp.server import Server
from rsp.tls.server_context import remember_validated
from rsp.transport.event_loop import loop_from_environment
from rsp.upstream.records import BackendRecord

# On a reload, an idle keep-alive connection of an old worker is closed after this much more idleness
# (HttpProxy.begin_drain): a client that reuses its connection at once (a load generator, a browser
# loading a page's assets) gets its answer with `Connection: close` instead of a close racing its request.
# A client idle for longer meets the same race as at any keep-alive timeout (RFC 9112 §9.3.1: it retries).
RELOAD_IDLE_LINGER: Final = 1.0


def snapshot_of(server: Server) -> dict[str, Any]:
    """This worker's counters for the master: its backends (for `show backends` sums), its live connections,
    its caches' figures (`cache stats`), and the metrics snapshot (rsp.metrics.snapshot, when that package is
    part of the build)."""
    caches = cache_figures(server.config)
    doc: dict[str, Any] = {
        "pid": os.getpid(),
        "live": server.live_connections(),
        "backends": {name: [r.snapshot() for r in pool.records] for name, pool in server.pools.items()},
        "caches": caches,
        "metrics": None,
    }
    try:
        metrics = importlib.import_module("rsp.metrics.snapshot")
    except ImportError:
        return doc  # a build without rsp.metrics: the backend counters above are all there is
    doc["metrics"] = metrics.snapshot(server.listening, server.pools, caches)
    return doc


class WorkerControl:
    """The worker's end of the control channel: applies the master's messages to the server."""

    def __init__(self, server: Server, sock: socket.socket, name: str) -> None:
        self.server = server
        self.name = name
        self.channel = Channel(server.loop, sock, "master", self.on_message, self.on_master_gone)
        for pool in server.pools.values():
            pool.on_eject = self.ejected
        routes = server.route_store
        if routes is not None:  # the machine's route store is the master's: questions go there
            routes.on_eject = self.ejected
            routes.apply_state = apply_pools_state
            routes.connect(lambda host: self.channel.send({"t": control.LOOKUP, "host": host}))

    def ejected(self, record: BackendRecord) -> None:
        self.channel.send({"t": control.EJECTED, "pool": record.pool, "backend": record.name})

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        server = self.server
        if kind == control.BACKENDS:
            for change in apply_pools_state(server.pools, message["pools"]):
                get_logger().debug("%s: %s", self.name, change)
        elif kind == control.EJECT:
            pool = server.pools.get(message["pool"])
            record = pool.find(message["backend"]) if pool is not None else None
            if pool is not None and record is not None:
                pool.eject(record)
        elif kind == control.STOP:
            set_title(f"{PREFIX}{self.name} finishing (reload)")
            server.request_shutdown(grace=float(message["grace"]), linger=RELOAD_IDLE_LINGER, reason="reload")
            self.channel.send({"t": control.STOPPING})
        elif kind == control.SNAPSHOT:
            self.channel.send({"t": control.SNAPSHOT, "id": message["id"], "data": snapshot_of(server)})
        elif kind == control.REOPEN:
            reopen_logs()
        elif kind == control.ROUTE and server.route_store is not None:
            server.route_store.answered(message)
        elif kind == control.ROUTED and server.route_store is not None:
            server.route_store.changed(message)

    def on_master_gone(self) -> None:
        """The master exited (or was killed): a worker alone would never be reloaded or restarted, so it
        finishes what it holds and exits like on SIGTERM."""
        if not self.server.loop.is_closed():
            self.server.request_shutdown(reason="master gone")


def run_worker() -> int:
    """`rsp worker`: started by the master only (its descriptors are named in RSP_WORKER)."""
    fds = WorkerFds.from_env(os.environ[WORKER_ENV])
    set_title(f"{PREFIX}{fds.name}")
    start = read_start(fds.config)
    os.close(fds.config)
    config = start.config
    remember_validated(start.tls_validated)  # the master's check: not planned again here (rsp.master.spawn)
    os.environ.pop(WORKER_ENV, None)
    setup_logging(config.log_level, config.process.error_log, tag=fds.name)  # lines read `worker 2.1: ...`
    # The terminal's hang-up and a logrotate USR1 sent to the whole group must not kill a worker (their
    # default action): the master decides about reloads, and USR1 reopens this worker's logs too.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    loop, _ = loop_from_environment()
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_log_loop_exception)
    loop.add_signal_handler(signal.SIGUSR1, reopen_logs)
    try:
        sockets = [socket.socket(fileno=fd) for fd in fds.listen]
        # the worker's own Lua runtime and shared-dictionary handle, made after the fork (rsp.lua_wiring)
        worker_id = int(fds.name.rsplit(".", 1)[-1]) if fds.name.rsplit(".", 1)[-1].isdigit() else 0
        server = Server(config, loop, sockets, filters_for=filters_for(config, loop, worker_id=worker_id))
        loop.run_until_complete(server.start())
        worker_control = WorkerControl(server, socket.socket(fileno=fds.control), fds.name)
        worker_control.channel.send({"t": control.READY})
        gc.collect()
        gc.freeze()
        loop.run_until_complete(server.wait_stopped())
        worker_control.channel.close()
    finally:
        loop.close()
    return 0


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    exc = context.get("exception")
    get_logger().error("event loop: %s", context.get("message", "error"),
                       exc_info=exc if isinstance(exc, BaseException) else None)
