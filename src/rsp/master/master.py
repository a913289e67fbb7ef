"""The master: binds every listener, starts `workers` worker processes on them, supervises them, runs the
active health checks and the admin socket for the whole machine, reloads on SIGHUP or `reload`, stops them
all gracefully on SIGTERM/SIGINT.

Listening sockets are bound here, once, before any worker starts, and inherited by every worker: they share
one accept queue. A reload starts new workers on the same sockets and then tells the old ones to stop
accepting, so a connection arriving during a reload waits in the queue for whichever worker accepts next;
nothing refuses it. (SO_REUSEPORT sockets, one per worker, would each have their own queue, and the
connections queued on an exiting worker's socket would be reset.)
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TextIO

from rsp.admin.socket_server import AdminSocket
from rsp.cache.memory_files import memory_backed_paths, remove_store_files
from rsp.config.model import Config
from rsp.errors import ConfigError, StartupError
from rsp.health.checker import HealthChecker
from rsp.logs import get_logger, reopen_logs, stamped
from rsp.lua_wiring import prepare_shared
from rsp.master import control
from rsp.master.app_pools import AppPools
from rsp.master.backend_state import pools_state
from rsp.master.channel import Channel
from rsp.master.machine_stats import MachineStats
from rsp.master.reload_check import ListenKey, kept_settings, listen_key, prepare_reload
from rsp.master.spawn import config_memfd, spawn_worker
from rsp.preflight import admin_socket_error, bind_configured, load_tls
from rsp.proxy.pools import PoolRuntime, check_tls
from rsp.sd_notify import notify
from rsp.supervise import Backoff, ChildInfo, ChildSpec, Supervisor
from rsp.tls.server_context import validated_for
from rsp.tls_wiring import pools_for

if TYPE_CHECKING:  # imported only when the config has them (pyroute2 and redis cost start-up time)
    from rsp.master.machine_routes import MachineRoutes
    from rsp.sandbox.manager import AppManager

# A worker imports rsp, reads its config and binds nothing: a second on an idle machine. A loaded 2-core
# machine (tests run several at once) can be many times slower; past this a start or reload is refused.
WORKER_READY_TIMEOUT: Final = 30.0
# After a worker's own grace (drain or reload_grace) it gets this long to close what it held before SIGKILL.
KILL_MARGIN: Final = 5.0
# How long a reload waits for the old workers to confirm they accept no more (they do at once unless stuck).
STOP_ACK_TIMEOUT: Final = 5.0
# How long `show backends`, `show workers` and the stats endpoint wait for a worker's snapshot.
SNAPSHOT_TIMEOUT: Final = 2.0


@dataclass
class Generation:
    """The workers started from one config (the first start, then each reload)."""

    number: int
    config: Config
    config_fd: int
    sockets: list[socket.socket]  # in the config's listener order
    pools: dict[str, PoolRuntime]  # the master's copy: what checks and the runtime API act on
    names: list[str] = field(default_factory=list)


@dataclass
class WorkerHandle:
    name: str
    generation: int
    pid: int
    channel: Channel
    ready: asyncio.Future[None]
    started: float
    stopped_accepting: asyncio.Future[None] | None = None


class Master:
    def __init__(self, config: Config, loop: asyncio.AbstractEventLoop, out: TextIO = sys.stdout) -> None:
        self.config = config
        self.loop = loop
        self.out = out
        self.listening: dict[ListenKey, socket.socket] = {}
        self.supervisor = Supervisor(loop, on_event=self._child_event)
        self.generation: Generation | None = None
        self.handles: dict[str, WorkerHandle] = {}
        self.pools: dict[str, PoolRuntime] = {}
        self.checkers: list[HealthChecker] = []
        self.admin: AdminSocket | None = None
        self.started = time.time()
        self.reloads = 0
        self.worker_restarts = 0
        self.last_reload: float | None = None
        self.stopping = False
        self._stopped: asyncio.Future[None] = loop.create_future()
        self._reload_lock = asyncio.Lock()
        # The memory-backed cache files of every config this master ran: removed when it stops.
        self.memory_stores = memory_backed_paths(config)
        self._snapshot_ids = itertools.count(1)
        self._snapshots: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self.stats = MachineStats(loop, self.gather_snapshots, lambda: self.pools, self.machine)
        self.apps: AppManager | None = None
        self.app_pools: AppPools | None = None  # the apps' backends in the pools, joined as they are ready
        self.routes: MachineRoutes | None = None  # the route store, once per machine

    # -- start ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Validate the TLS files, bind, start the workers and wait until each serves, then announce each
        listener."""
        # The certificates are validated here rather than only in each worker: the workers get the result with
        # the config (a worker validates nothing the master did), a bad one is reported as the check reports
        # it (file, line and key) before anything starts, and the first reload finds them validated already
        # (1,000 certificates: ~0.6 s; docs/performance.md, issue 23).
        load_tls(self.config)
        try:
            for listener in self.config.listeners:
                self.listening[listen_key(listener)] = bind_configured(self.config, listener.key, listener.host,
                                                                       listener.port)
            pools = self._build_pools(self.config)
        except StartupError:
            self._close_listeners(set())
            raise
        await self._start_routes(self.config, pools)
        generation = self._new_generation(self.config, pools)
        try:
            prepare_shared(self.config, fresh=True)  # before any worker opens it (rsp.lua_wiring)
            await self._start_workers(generation)
        except StartupError:
            self._close_listeners(set())
            if self.routes is not None:
                await self.routes.stop()
            raise
        self.generation = generation
        self.pools = pools
        if self.config.admin_socket:
            from rsp.master.machine_admin import start_machine_admin

            try:
                self.admin = await start_machine_admin(self.config.admin_socket, self)
            except (OSError, StartupError) as exc:
                await self.supervisor.stop_all()
                self._close_listeners(set())
                raise admin_socket_error(self.config, exc) from exc
        try:
            await self.stats.start(self.config)
        except StartupError:  # the workers serve already: stop them, as a failed admin socket does
            if self.admin is not None:
                self.admin.close()
            await self.supervisor.stop_all()
            self._close_listeners(set())
            raise
        await self._start_apps()
        self._start_checkers()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self.request_shutdown, sig)
        self.loop.add_signal_handler(signal.SIGHUP, self._reload_signal)
        self.loop.add_signal_handler(signal.SIGUSR1, self.reopen_logs)
        for sock in generation.sockets:
            self.out.write(stamped(f"Started.  Listening on port {sock.getsockname()[1]}.") + "\n")
        self.out.flush()
        get_logger().info("master %d: %d worker(s) serving (pids %s)", os.getpid(), len(generation.names),
                          ", ".join(str(self.handles[n].pid) for n in generation.names if n in self.handles))

    async def wait_stopped(self) -> None:
        await self._stopped

    async def _start_apps(self) -> None:
        """Sandboxed apps are one per machine: the master starts and supervises them, on its own copy of the
        pools, and every join or leave reaches the workers as backend state (rsp.master.backend_state)."""
        if not self.config.sandbox.apps:
            return
        from rsp.sandbox.manager import AppManager

        self.app_pools = AppPools(self.pools, self.broadcast_state)
        self.apps = AppManager(self.config.sandbox, self.config.path, self.loop, self.app_pools)
        try:
            await self.apps.start()
        except StartupError:
            self.apps = None
            if self.admin is not None:
                self.admin.close()
            await self.supervisor.stop_all()
            self._close_listeners(set())
            raise

    async def _start_routes(self, config: Config, pools: dict[str, PoolRuntime]) -> MachineRoutes | None:
        """The route store of `config`, on `pools` (its Redis-supplied pools join them), from the routes the
        one before knew (a reload); it answers the workers from now on. Returns the one before (to stop, or
        to put back if the reload fails)."""
        old, self.routes = self.routes, None
        if config.route_store is None:
            return old
        from rsp.master.machine_routes import MachineRoutes  # imports redis: only for configs that use it

        def health_changed(message: str) -> None:
            self.broadcast_state()
            get_logger().info("%s", message)

        self.routes = MachineRoutes(config, pools, self.loop, self._send_to, self._send_all, health_changed)
        await self.routes.start(old)
        return old

    def _send_to(self, name: str, message: dict[str, Any]) -> None:
        handle = self.handles.get(name)
        if handle is not None:
            handle.channel.send(message)

    def _send_all(self, message: dict[str, Any]) -> None:
        for handle in self.handles.values():
            handle.channel.send(message)

    def _build_pools(self, config: Config) -> dict[str, PoolRuntime]:
        """The master's own copy of each pool: what the health checks and the runtime API act on, sent to
        the workers as state (rsp.master.backend_state)."""
        return pools_for(config, self.loop.time)

    def _start_checkers(self) -> None:
        for pool in self.pools.values():
            self.start_checker(pool)

    def start_checker(self, pool: PoolRuntime) -> None:
        """(Re)start the active checks of `pool`, over its current records (after add/remove backend too)."""
        for checker in [c for c in self.checkers if c.pool.name == pool.name]:
            self.checkers.remove(checker)
            self._spawn(checker.stop())
        if pool.spec.health.kind == "none":
            return

        def log_transition(message: str) -> None:
            # The checker sets record.up, then logs, then calls back: the state goes to the workers before
            # the line is written. A worker applies it on its next loop turn: a request it accepts and reads
            # in the same turn as the news (an accepted connection is read at once) is answered with the
            # state before, as a request already at a backend is.
            self.broadcast_state()
            get_logger().info("%s", message)

        checker = HealthChecker(pool.spec, pool.records, pool.health_changed, log_transition, check_tls(pool))
        checker.start()
        self.checkers.append(checker)

    # -- workers -------------------------------------------------------------------------------------
    def _new_generation(self, config: Config, pools: dict[str, PoolRuntime]) -> Generation:
        number = self.generation.number + 1 if self.generation is not None else 1
        sockets = [self.listening[listen_key(listener)] for listener in config.listeners]
        # The certificates the reload's check just validated go with the config: the new workers skip them.
        return Generation(number, config, config_memfd(config, validated_for(config)), sockets, pools)

    async def _start_workers(self, generation: Generation) -> None:
        """Start the generation's workers and wait until each is ready; on failure stop them and raise."""
        grace = max(generation.config.timeouts.drain, generation.config.timeouts.reload_grace) + KILL_MARGIN
        for index in range(1, generation.config.process.workers + 1):
            name = f"worker {generation.number}.{index}"
            generation.names.append(name)
            self.supervisor.add(ChildSpec(name, self._starter(generation, name), grace=grace, backoff=Backoff()))
        try:
            await asyncio.wait_for(self._all_ready(generation), WORKER_READY_TIMEOUT)
        except (TimeoutError, StartupError) as exc:
            why = str(exc) or f"not ready within {WORKER_READY_TIMEOUT:.0f} s"
            await asyncio.gather(*(self.supervisor.stop(name) for name in generation.names))
            self._forget(generation)
            os.close(generation.config_fd)
            raise StartupError(f"workers of generation {generation.number} did not start: {why}") from None

    async def _all_ready(self, generation: Generation) -> None:
        for name in generation.names:
            handle = self.handles.get(name)
            if handle is None:
                raise StartupError(f"{name} could not be started")
            await handle.ready

    def _starter(self, generation: Generation, name: str) -> Any:
        def start() -> int:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                pid = spawn_worker(name, generation.config_fd, [s.fileno() for s in generation.sockets],
                                   theirs.fileno())
            except StartupError:
                ours.close()
                raise
            finally:
                theirs.close()
            previous = self.handles.get(name)
            handle = WorkerHandle(name, generation.number, pid, Channel(
                self.loop, ours, name, lambda message: self._on_message(name, message),
                lambda: self._channel_closed(name)), self.loop.create_future(), time.time())
            if previous is not None and not previous.ready.done():
                # The worker died before it was ready and this is its restart: the start is failing.
                previous.ready.set_exception(StartupError(f"{name} exited before it was ready"))
            self.handles[name] = handle
            handle.channel.send({"t": control.BACKENDS, "pools": pools_state(generation.pools)})
            return pid

        return start

    def _on_message(self, name: str, message: dict[str, Any]) -> None:
        handle = self.handles.get(name)
        kind = message["t"]
        if kind == control.READY and handle is not None and not handle.ready.done():
            handle.ready.set_result(None)
        elif kind == control.STOPPING and handle is not None and handle.stopped_accepting is not None:
            if not handle.stopped_accepting.done():
                handle.stopped_accepting.set_result(None)
        elif kind == control.EJECTED:
            pool = self.pools.get(message["pool"])
            record = pool.find(message["backend"]) if pool is not None else None
            if pool is not None and record is not None:
                pool.eject(record)
            for other in self.handles.values():
                if other.name != name:
                    other.channel.send({"t": control.EJECT, "pool": message["pool"], "backend": message["backend"]})
        elif kind == control.LOOKUP:
            if self.routes is not None:
                self.routes.lookup(name, str(message["host"]))
            else:
                self._send_to(name, {"t": control.ROUTE, "host": message["host"], "backends": []})
        elif kind == control.SNAPSHOT:
            waiter = self._snapshots.pop(int(message["id"]), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message.get("data") or {})

    def _channel_closed(self, name: str) -> None:
        handle = self.handles.get(name)
        if handle is not None and handle.stopped_accepting is not None and not handle.stopped_accepting.done():
            handle.stopped_accepting.set_result(None)
        if handle is not None and not handle.ready.done():
            handle.ready.set_exception(StartupError(f"{name} exited before it was ready"))
            handle.ready.exception()  # retrieved: a failed start is reported by _start_workers, not the loop

    def _child_event(self, event: str, info: ChildInfo) -> None:
        handle = self.handles.get(info.name)
        pid = handle.pid if handle is not None else info.pid
        logger = get_logger()
        if event == "exited":
            level = logger.info if self.stopping or self._retiring(info.name) else logger.warning
            level("%s (pid %s) %s", info.name, pid, info.last_exit)
            if handle is not None:
                handle.channel.close()
        elif event == "restarting":
            self.worker_restarts += 1
            logger.warning("%s: restarting it (restart %d of this worker)", info.name, info.restarts)
        elif event == "stopped" and handle is not None:
            handle.channel.close()
            del self.handles[info.name]

    def _retiring(self, name: str) -> bool:
        return self.generation is None or name not in self.generation.names

    def broadcast_state(self) -> None:
        """Send the machine's backend state to every worker of the current generation (after a check, drain,
        weight, add, remove). Old workers finishing after a reload keep the state they had."""
        if self.generation is None:
            return
        state = {"t": control.BACKENDS, "pools": pools_state(self.pools)}
        for name in self.generation.names:
            handle = self.handles.get(name)
            if handle is not None:
                handle.channel.send(state)

    async def gather_snapshots(self) -> list[dict[str, Any]]:
        """One snapshot per serving worker of the current generation (those that answer in time)."""
        names = self.generation.names if self.generation is not None else []
        waiters = []
        for name in names:
            handle = self.handles.get(name)
            if handle is None or handle.channel.closed or not handle.ready.done():
                continue
            ident = next(self._snapshot_ids)
            waiter: asyncio.Future[dict[str, Any]] = self.loop.create_future()
            self._snapshots[ident] = waiter
            handle.channel.send({"t": control.SNAPSHOT, "id": ident})
            waiters.append((ident, waiter))
        results: list[dict[str, Any]] = []
        for ident, waiter in waiters:
            try:
                results.append(await asyncio.wait_for(waiter, SNAPSHOT_TIMEOUT))
            except TimeoutError:
                self._snapshots.pop(ident, None)
        return results

    def workers_info(self) -> list[dict[str, Any]]:
        current = self.generation.names if self.generation is not None else []
        number = self.generation.number if self.generation is not None else 0
        out = []
        for info in self.supervisor.info():
            if info.state == "stopped" and info.name not in current:
                continue
            handle = self.handles.get(info.name)
            generation = handle.generation if handle is not None else None
            if info.name in current:
                role = "serving"
            elif generation is not None and generation > number:  # a reload's workers, not ready yet
                role = "starting (new generation)"
            else:
                role = "finishing (old generation)"
            out.append({"name": info.name, "pid": info.pid, "state": info.state, "role": role,
                        "restarts": info.restarts, "started": info.started_at, "last_exit": info.last_exit,
                        "generation": generation})
        return out

    def machine(self) -> dict[str, Any]:
        """The master's facts for the stats endpoint (rsp.metrics.endpoint's `machine`)."""
        workers = [{"pid": w["pid"], "number": index, "started": w["started"], "name": w["name"],
                    "state": w["state"], "restarts": w["restarts"]}
                   for index, w in enumerate(self.workers_info(), start=1)]
        return {"workers": workers, "reloads": self.reloads, "worker_restarts": self.worker_restarts,
                "last_reload": self.last_reload, "started": self.started}

    # -- reload --------------------------------------------------------------------------------------
    def _reload_signal(self) -> None:
        get_logger().info("SIGHUP received: reloading %s", self.config.path)
        self._spawn(self.reload())

    async def reload(self) -> dict[str, Any]:
        """Validate the config file again; if it is good, start a new generation of workers on it, then
        tell the old ones to finish what they hold (up to timeouts.reload_grace) and exit."""
        if self.stopping:
            return {"error": "shutting down"}
        async with self._reload_lock:
            notify("RELOADING=1")
            try:
                return await self._reload()
            finally:
                notify("READY=1")

    async def _reload(self) -> dict[str, Any]:
        try:
            config, new_sockets = prepare_reload(self.config.path, self.listening)
        except ConfigError as exc:
            get_logger().error("reload refused, the running config stays: %s", exc)
            return {"error": f"reload refused, the running config stays: {exc}"}
        self.listening.update(new_sockets)
        old = self.generation
        generation = self._new_generation(config, self._build_pools(config))
        # The new store first: the new workers ask it, and it starts from what the machine knows.
        old_routes = await self._start_routes(config, generation.pools)
        try:
            prepare_shared(config, fresh=False)  # ngx.shared keeps its values across a reload, as nginx's zones
            await self._start_workers(generation)
        except StartupError as exc:
            for key, sock in new_sockets.items():
                sock.close()
                del self.listening[key]
            if self.routes is not None:
                self._spawn(self.routes.stop())
            self.routes = old_routes
            get_logger().error("reload refused, the running config stays: %s", exc)
            return {"error": f"reload refused, the running config stays: {exc}"}
        if old_routes is not None:
            self._spawn(old_routes.stop())
        self.generation = generation
        self.pools = generation.pools
        if self.app_pools is not None:
            self.app_pools.move_to(self.pools)  # the apps are not reloaded: they join the new generation's pools
        not_applied = [*await self.stats.reload(self.config, config), *kept_settings(self.config, config)]
        for note in not_applied:
            get_logger().warning("reload: %s", note)
        self.config = config
        self.memory_stores |= memory_backed_paths(config)
        for checker in self.checkers:
            self._spawn(checker.stop())
        self.checkers.clear()
        self._start_checkers()
        self.broadcast_state()
        self.reloads += 1
        self.last_reload = time.time()
        grace = config.timeouts.reload_grace
        if old is not None:
            acks = []
            for name in old.names:
                handle = self.handles.get(name)
                if handle is not None and not handle.channel.closed:
                    handle.stopped_accepting = self.loop.create_future()
                    acks.append(handle.stopped_accepting)
                    handle.channel.send({"t": control.STOP, "grace": grace})
            self._spawn(self._retire(old))
            # Answer once the old workers accept no more: from then on, every new connection is the new
            # config's. (A worker that dies meanwhile accepts nothing either: its exit ends the wait.)
            if acks:
                await asyncio.wait(acks, timeout=STOP_ACK_TIMEOUT)
        get_logger().info("reload: generation %d serving with %d worker(s); the old ones finish what they "
                          "hold for up to %.0f s", generation.number, len(generation.names), grace)
        reply: dict[str, Any] = {"ok": True, "generation": generation.number, "workers": self.workers_info()}
        if not_applied:
            reply["not_applied"] = not_applied
        return reply

    async def _retire(self, old: Generation) -> None:
        await asyncio.gather(*(self.supervisor.retire(name) for name in old.names))
        self._forget(old)
        get_logger().info("generation %d stopped: its %d worker(s) finished after the reload", old.number,
                          len(old.names))
        os.close(old.config_fd)
        if self.generation is not None:
            self._close_listeners({listen_key(lst) for lst in self.generation.config.listeners})

    def _forget(self, generation: Generation) -> None:
        """A stopped generation's workers leave the supervisor's records: each record's starter holds the
        generation (its config and pools), which would otherwise live as long as the master, reload after
        reload (the chaos soak saw the master grow by ~23 KiB per reload)."""
        for name in generation.names:
            self.supervisor.forget(name)

    def _close_listeners(self, keep: set[ListenKey]) -> None:
        for key in [k for k in self.listening if k not in keep]:
            self.listening.pop(key).close()

    # -- logs ----------------------------------------------------------------------------------------
    def reopen_logs(self) -> None:
        """SIGUSR1: reopen the master's log files and tell every worker to reopen theirs."""
        reopen_logs()
        for handle in self.handles.values():
            handle.channel.send({"t": control.REOPEN})

    # -- stop ----------------------------------------------------------------------------------------
    def request_shutdown(self, sig: int | None = None) -> None:
        """SIGTERM/SIGINT: every worker drains as a single process does (timeouts.drain); exit after them."""
        if self.stopping:
            return
        self.stopping = True
        notify("STOPPING=1")
        name = signal.Signals(sig).name if sig else "request"
        get_logger().info("%s received: stopping %d worker(s) gracefully", name, len(self.handles))
        self._spawn(self._shutdown())

    async def _shutdown(self) -> None:
        # The master's copies of the listening sockets go first: once every worker has closed its own (it
        # does as it starts draining), a new connection is refused, as with one process.
        self._close_listeners(set())
        for checker in self.checkers:
            await checker.stop()
        self.checkers.clear()
        if self.routes is not None:
            await self.routes.stop()
            self.routes = None
        if self.admin is not None:
            self.admin.close()
            self.admin = None
        self.stats.close()
        await self.supervisor.stop_all()
        if self.apps is not None:  # after the workers: they proxied to the apps until they drained
            await self.apps.stop()
            self.apps = None
        for path in sorted(self.memory_stores):  # after the workers: none uses them now (rsp.cache.memory_files)
            remove_store_files(path)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            self.loop.remove_signal_handler(sig)
        get_logger().info("rsp stopped (master pid %d, generation %d and its workers)", os.getpid(),
                          self.generation.number if self.generation is not None else 0)
        if not self._stopped.done():
            self._stopped.set_result(None)

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            get_logger().error("master: %r", task.exception(), exc_info=task.exception())
