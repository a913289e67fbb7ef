"""The apps at run time: networks, launches under the Supervisor, readiness, cleanup.

An app is announced ready only when its port accepts a TCP connection at its address (probed from the host
side, with a short growing interval), and gone as soon as its launcher exits; the Supervisor restarts it
with backoff. The sandbox knows nothing of pools: whoever owns both (rsp.master.app_pools) hears the
announcements through `Membership` and joins the app's backends to its pools.

Stop: every app gets SIGTERM, then SIGKILL after its grace; then the veth pairs, the namespaces and the
nftables table are removed, and the same removal runs at start for leftovers of an earlier run of this
instance that was killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import pwd
import socket
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Protocol

from rsp.config.model import App, Backend, Sandbox
from rsp.errors import SandboxError, StartupError
from rsp.logs import get_logger
from rsp.sandbox import capabilities, naming, nat, network
from rsp.sandbox.launcher import BASE_PATH, LaunchSpec, launch
from rsp.sandbox.logfiles import READ_SIZE, RotatingLog
from rsp.sandbox.state import STATE_FILE, AppState, write_state
from rsp.supervise import ChildInfo, ChildSpec, Supervisor

# Readiness probe: first retry after 20 ms (a small app binds within tens of ms), doubling to 250 ms, each
# connect bounded by 1 s; a probe that never succeeds runs until the app exits (it is simply not ready).
PROBE_FIRST_DELAY: Final = 0.02
PROBE_MAX_DELAY: Final = 0.25
PROBE_CONNECT_TIMEOUT: Final = 1.0
UNSANDBOXED_HOST: Final = "127.0.0.1"
# An app that exits before it is ready gets this many of its last output lines in rsp's log; the pipe is
# drained first with at most this many reads (a pipe holds 64 KiB: one read, more only if it kept writing).
EARLY_EXIT_LINES: Final = 5
EARLY_EXIT_READS: Final = 16
# State file writes are coalesced over this long: `rsp apps list` is read by people, at most ~20 writes/s.
STATE_WRITE_DELAY: Final = 0.05

STARTING = "starting"
READY = "ready"
RESTARTING = "restarting"
STOPPED = "stopped"


class Membership(Protocol):
    """What hears an app's readiness: `ready` with the backends it offers, as (pool name, backend), each time
    it becomes ready; `gone` when it stops being (exit, restart, rsp's stop). Called once per change."""

    def ready(self, app: str, backends: Sequence[tuple[str, Backend]]) -> None: ...

    def gone(self, app: str) -> None: ...


@dataclass
class AppRuntime:
    app: App
    net: naming.AppNet | None
    host: str  # where rsp connects to the app
    launch: LaunchSpec
    log: RotatingLog
    pools: list[tuple[str, int]]  # (pool name, app port) it offers when ready
    state: str = STARTING
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    output_fd: int = -1  # the read end of the output pipe of the current launch (-1: none, or closed)
    announced: bool = False  # announced ready (and not gone since)
    probe: asyncio.Task[None] | None = None


class AppManager:
    def __init__(self, sandbox: Sandbox, config_path: str, loop: asyncio.AbstractEventLoop,
                 membership: Membership) -> None:
        self.sandbox = sandbox
        self.membership = membership
        self.loop = loop
        self.tag = naming.instance_tag(config_path, sandbox.instance)
        # Relative paths in an app (`dir`, a `command` with a slash) are the config file's, as nginx's are
        # its prefix's: the config works whatever directory rsp is started from.
        self.base_dir = os.path.dirname(os.path.abspath(config_path))
        self.directory = naming.runtime_dir(sandbox.runtime_dir, self.tag)
        self.apps: dict[str, AppRuntime] = {}
        self.supervisor = Supervisor(loop, on_event=self._on_event)
        self._probes: set[asyncio.Task[None]] = set()
        self._state_timer: asyncio.TimerHandle | None = None
        self._stopping = False

    # -- start -------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse to start when the sandbox cannot work here: the capabilities, users and directories."""
        sandboxed = [app for app in self.sandbox.apps if app.sandbox]
        if sandboxed:
            missing = capabilities.missing_here()
            if missing:
                raise StartupError(key=sandboxed[0].key, message=f"{sandboxed[0].key}: sandboxed apps need "
                                   f"{' and '.join(missing)}; run rsp as"
                                   f" root, or set sandbox = false on the app to run it unsandboxed")
        for app in self.sandbox.apps:
            if app.user:
                try:
                    pwd.getpwnam(app.user)
                except KeyError:
                    raise StartupError(f"{app.key}.user: no such user {app.user!r}", key=f"{app.key}.user") from None
            if app.dir and not os.path.isdir(self.app_dir(app)):
                raise StartupError(f"{app.key}.dir: {self.app_dir(app)} is not a directory", key=f"{app.key}.dir")

    async def start(self) -> None:
        """Check, remove leftovers, then per app: create its network and launch it, so that one app starts
        up while the next one's network is made. Netlink runs on one worker thread (pyroute2's synchronous
        API runs an event loop of its own; the proxy keeps serving), and never while rsp forks."""
        began = time.monotonic()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rsp-netlink")
        try:
            await self.loop.run_in_executor(executor, self._prepare)
            host = await self.loop.run_in_executor(executor, network.host_netlink)
            try:
                index = 0
                for app in self.sandbox.apps:
                    net = None
                    if app.sandbox:
                        net = naming.app_net(self.tag, self.sandbox.network, index, app.name)
                        index += 1
                        await self.loop.run_in_executor(executor, functools.partial(
                            network.create_app_network, net, forwarding=self.sandbox.forward_mode == "nat",
                            host=host))
                    rt = self.apps[app.name] = self._runtime(app, net)
                    self.supervisor.add(ChildSpec(app.name, functools.partial(self._launch, rt), grace=app.grace))
                if self.sandbox.forward_mode == "nat" and self.sandbox.forwards:
                    await self.loop.run_in_executor(executor, functools.partial(
                        nat.apply, self.tag, self.sandbox.forwards, {name: rt.net for name, rt in self.apps.items()}))
            finally:
                await self.loop.run_in_executor(executor, host.close)
        except SandboxError as exc:
            await self.supervisor.stop_all()
            await self.loop.run_in_executor(executor, self.cleanup)
            raise StartupError(str(exc)) from exc
        finally:
            executor.shutdown(wait=False)
        get_logger().info("sandbox %s: %d app(s) launched in %.2f s", self.tag, len(self.apps),
                          time.monotonic() - began)
        self._write_state()

    def _prepare(self) -> None:
        self.check()
        removed = self.cleanup()
        if removed:
            get_logger().warning("sandbox %s: removed leftovers of an earlier run: %s", self.tag, ", ".join(removed))
        if any(app.sandbox for app in self.sandbox.apps):
            clash = network.overlapping_routes(self.sandbox.network, naming.link_prefix(self.tag))
            if clash:
                raise StartupError(key="sandbox_network", message=f"sandbox_network {self.sandbox.network} is "
                                   "already routed here"
                                   f" ({', '.join(clash)}); give this rsp another range (two rsp instances"
                                   " need distinct ranges)")
        os.makedirs(os.path.join(self.directory, "logs"), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):  # a killed run's: its apps are gone
            os.remove(os.path.join(self.directory, STATE_FILE))

    def _runtime(self, app: App, net: naming.AppNet | None) -> AppRuntime:
        uid = gid = None
        groups: tuple[int, ...] = ()
        home = "/"
        if app.user:
            entry = pwd.getpwnam(app.user)
            uid, gid, home = entry.pw_uid, entry.pw_gid, entry.pw_dir
            groups = tuple(os.getgrouplist(app.user, entry.pw_gid))
        env = {"PATH": BASE_PATH, "HOME": home, "LANG": "C.UTF-8", "APP_NAME": app.name, "PORT": str(app.port)}
        env.update(app.env)
        cwd = self.app_dir(app)
        program = app.command[0]
        if "/" in program and not os.path.isabs(program):  # a bare name is looked up in PATH, as a shell does
            program = os.path.join(cwd, program)
        spec = LaunchSpec(name=app.name, argv=(program, *app.command[1:]), env=env, cwd=cwd, uid=uid, gid=gid,
                          groups=groups,
                          netns_path=os.path.join(network.NETNS_DIR, net.netns) if net else "",
                          hostname=app.hostname or app.name)
        pools = [(app.pool, app.port)] if app.pool else []
        if self.sandbox.forward_mode == "relay":
            pools += [(fwd.pool, fwd.app_port) for fwd in self.sandbox.forwards if fwd.app == app.name]
        log = RotatingLog(os.path.join(self.directory, "logs", f"{app.name}.log"), app.log_max_bytes)
        return AppRuntime(app, net, net.app_ip if net else UNSANDBOXED_HOST, spec, log, pools)

    def app_dir(self, app: App) -> str:
        """The app's working directory: its `dir`, relative to the config file's folder; that folder if unset."""
        return os.path.join(self.base_dir, app.dir) if app.dir else self.base_dir

    def _launch(self, rt: AppRuntime) -> int:
        read_fd, write_fd = os.pipe()
        try:
            pid = launch(rt.launch, write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        os.set_blocking(read_fd, False)
        rt.output_fd = read_fd
        self.loop.add_reader(read_fd, self._read_output, rt, read_fd)
        return pid

    def _read_output(self, rt: AppRuntime, fd: int, limit: int = 1) -> None:
        """Copy up to `limit` reads of the app's output to its log; at EOF stop watching the pipe."""
        for _ in range(limit):
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                break
            rt.log.write(data)
        else:
            return
        self.loop.remove_reader(fd)  # EOF: the app and its launcher are gone
        os.close(fd)
        if rt.output_fd == fd:
            rt.output_fd = -1

    # -- events ------------------------------------------------------------------------------------------
    def _on_event(self, event: str, info: ChildInfo) -> None:
        rt = self.apps[info.name]
        rt.pid, rt.restarts, rt.started_at = info.pid, info.restarts, info.started_at
        if event == "started":
            rt.state = STARTING
            rt.probe = self.loop.create_task(self._probe(rt, info.pid))
            self._probes.add(rt.probe)
            rt.probe.add_done_callback(self._probes.discard)
        else:
            if rt.probe is not None:
                rt.probe.cancel()
                rt.probe = None
            self._announce_gone(rt)
            if event == "exited":
                log = get_logger().info if self._stopping else get_logger().warning
                if rt.state == STARTING and not self._stopping:
                    self._log_early_exit(rt, info.last_exit or "exited")
                else:
                    log("app %s %s", rt.app.name, info.last_exit)
            rt.state = {"restarting": RESTARTING, "stopped": STOPPED}.get(event, rt.state)
        self._write_state()

    def _log_early_exit(self, rt: AppRuntime, how: str) -> None:
        """An app that exits before it was ever ready (a typo in its command, a missing module): its last
        lines of output go to rsp's log with the exit, where the operator looks first."""
        if rt.output_fd >= 0:  # what is still in the pipe: the app is gone, so the pipe ends soon
            self._read_output(rt, rt.output_fd, limit=EARLY_EXIT_READS)
        lines = rt.log.tail(EARLY_EXIT_LINES)
        logger = get_logger()
        logger.warning("app %s %s before it was ready; %s", rt.app.name, how,
                       f"its last {len(lines)} line(s) of output (all: rsp apps logs {rt.app.name}):" if lines
                       else "it wrote nothing")
        for line in lines:
            logger.warning("app %s> %s", rt.app.name, line)

    async def _probe(self, rt: AppRuntime, pid: int | None) -> None:
        delay = PROBE_FIRST_DELAY
        while rt.pid == pid:
            if await self._accepts(rt.host, rt.app.port):
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, PROBE_MAX_DELAY)
        if rt.pid != pid:
            return
        rt.state = READY
        rt.probe = None
        self._announce_ready(rt)
        get_logger().info("app %s ready at %s:%d (pid %s)", rt.app.name, rt.host, rt.app.port, pid)
        self._write_state()

    async def _accepts(self, host: str, port: int) -> bool:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(self.loop.sock_connect(sock, (host, port)), PROBE_CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            return False
        finally:
            sock.close()
        return True

    def _announce_ready(self, rt: AppRuntime) -> None:
        if rt.announced:
            return
        rt.announced = True
        label = f"app:{rt.app.name}"
        self.membership.ready(rt.app.name, [(pool, Backend(rt.host, port, name=label)) for pool, port in rt.pools])

    def _announce_gone(self, rt: AppRuntime) -> None:
        if not rt.announced:
            return
        rt.announced = False
        self.membership.gone(rt.app.name)

    # -- stop --------------------------------------------------------------------------------------------
    async def stop(self) -> None:
        self._stopping = True
        await self.supervisor.stop_all()
        for task in list(self._probes):
            task.cancel()
        for rt in self.apps.values():
            self._announce_gone(rt)
            rt.log.close()
        await asyncio.to_thread(self.cleanup)
        if self._state_timer is not None:
            self._state_timer.cancel()
            self._state_timer = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(self.directory, STATE_FILE))
        self._remove_runtime_files()

    def _remove_runtime_files(self) -> None:
        """A clean stop leaves nothing under the runtime dir: the apps' logs, the logs folder and this
        instance's folder go (only rsp's own files: anything else found there stays, and so does its folder)."""
        logs = os.path.join(self.directory, "logs")
        for rt in self.apps.values():
            for path in (rt.log.path, rt.log.path + ".1"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        for folder in (logs, self.directory):
            with contextlib.suppress(OSError):  # not empty: someone else's file
                os.rmdir(folder)

    def cleanup(self) -> list[str]:
        """Remove every netns, veth and nftables table of this instance; returns what was there."""
        removed = network.remove_leftovers(naming.netns_prefix(self.tag), naming.link_prefix(self.tag))
        if nat.remove(self.tag):
            removed.append(f"nft table {naming.nft_table(self.tag)}")
        return removed

    # -- state -------------------------------------------------------------------------------------------
    def _write_state(self) -> None:
        """Write the state file soon: the changes of one burst (50 apps starting) make one write."""
        if self._state_timer is None:
            self._state_timer = self.loop.call_later(STATE_WRITE_DELAY, self._flush_state)

    def _flush_state(self) -> None:
        self._state_timer = None
        apps = [AppState(name=rt.app.name, sandboxed=rt.net is not None, netns=rt.net.netns if rt.net else "",
                         address=f"{rt.host}:{rt.app.port}", pid=rt.pid, state=rt.state, restarts=rt.restarts,
                         started_at=rt.started_at, log=rt.log.path)
                for rt in self.apps.values()]
        try:
            write_state(self.directory, os.getpid(), apps)
        except OSError as exc:
            get_logger().warning("sandbox: cannot write the state file in %s: %s", self.directory, exc)
