"""`rsp --check`'s second half: what start would ask of the system, tried and undone (like `nginx -t`).

A config can be valid and still fail to start: a listen port (or the stats listener's) already in use, a
backend host name that does not resolve, an admin socket or an access log in a directory that does not
exist. `check_startable` does each of those exactly as the server's start does (the same functions:
rsp.transport.listener.bind_listener, with its SO_REUSEADDR, and rsp.proxy.pools.resolve_backend), then
closes what it opened, and names the file, the line and the key of the entry at fault. An address held by
this config's own running rsp (rsp.running) is fine: the edit, check, reload routine works while rsp runs.
Start itself binds through `bind_configured`, so a busy port at start reads as it does here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from typing import Final, NoReturn

from rsp.config.key_lines import line_of
from rsp.config.model import Config
from rsp.errors import ConfigError, StartupError
from rsp.proctitle import master_title, title_of
from rsp.proxy.pools import resolve_backend
from rsp.running import can_inspect, held_by, peer_pid, running_instance
from rsp.tls.client_context import build_backend_context
from rsp.tls.server_context import plan_tls_server
from rsp.transport.listener import bind_listener

ADMIN_SOCKET_KEY: Final = "admin_socket"
ACCESS_LOG_KEY: Final = "http.access_log_path"
PID_FILE_KEY: Final = "pid_file"
STATS_KEY: Final = "stats.listen"
# sockaddr_un.sun_path on Linux holds 108 bytes including the terminating NUL (unix(7)).
UNIX_PATH_MAX: Final = 108
# The probe socket bound beside the admin socket's path: its own name, so that a running rsp's socket at
# that path is left alone.
PROBE_SUFFIX: Final = ".rsp-check"


def check_startable(config: Config) -> list[str]:
    """Bind every listener and the stats listener (all at once, as start holds them), resolve every backend
    (health checks connect to the same hosts), bind a socket where the admin socket would go and open the
    log files; close them all. An address in use by this config's own running rsp is fine (a reload keeps
    its socket): it is returned as a note. Raises ConfigError."""
    sockets: list[socket.socket] = []
    notes: list[str] = []
    running = _Running(config)
    binds = [(listener.key, listener.host, listener.port) for listener in config.listeners]
    if config.stats is not None:
        binds.append((STATS_KEY, config.stats.host, config.stats.port))
    try:
        for key, host, port in binds:
            try:
                sockets.append(bind_listener(host, port))
            except StartupError as exc:
                pid = running.pid() if _address_in_use(exc) else None
                if pid is None or not held_by(pid, host, port):
                    hint = "" if pid is None or can_inspect(pid) else (
                        f" (this config's rsp runs as pid {pid}, whose sockets this user cannot inspect: check "
                        "as its user or as root)")
                    _fail(config, key, f"{exc}{hint}")
                notes.append(f"{host}:{port} is held by this config's running rsp (pid {pid}): a reload keeps it")
        check_resolvable_and_files(config)
    finally:
        for sock in sockets:
            sock.close()
    return notes


class _Running:
    """The config's running rsp, looked up once and only when an address is found in use."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.looked = False
        self.found: int | None = None

    def pid(self) -> int | None:
        if not self.looked:
            self.looked = True
            self.found = running_instance(self.config.path, self.config.process.pid_file, self.config.admin_socket)
        return self.found


def _address_in_use(exc: StartupError) -> bool:
    return exc.errno == errno.EADDRINUSE


def check_resolvable_and_files(config: Config) -> None:
    """The checks that bind no listener (a reload keeps its listeners bound): every backend resolves, the
    admin socket's place and the log files can be opened, the TLS certificates, keys and CAs load."""
    for pool in config.pools.values():
        for backend in pool.backends:
            try:
                resolve_backend(backend)
            except StartupError as exc:
                _fail(config, backend.key, str(exc))
    if config.admin_socket:
        _probe_admin_socket(config)
    _open_access_log(config)
    if config.process.error_log:
        try:
            with open(config.process.error_log, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            _fail(config, "error_log", f"cannot open {config.process.error_log}: {exc.strerror or exc}")
    if config.process.pid_file:
        _probe_pid_file(config)
    load_tls(config)
    _check_cache_paths(config)


def _check_cache_paths(config: Config) -> None:
    """A cache's `path` must be a file rsp can create or write, in a directory that exists (start opens the
    LMDB file there, and its lock file beside it). Nothing is created: a running rsp may be using the file."""
    for cache in config.caches.values():
        if not cache.path:
            continue  # memory-backed: /dev/shm or the temporary directory
        key = f"{cache.key or 'caches.' + cache.name}.path"
        folder = os.path.dirname(cache.path) or "."
        if not os.path.isdir(folder):
            _fail(config, key, f"{cache.path}: the directory {folder} does not exist")
        if not os.access(folder, os.W_OK | os.X_OK):
            _fail(config, key, f"{cache.path}: the directory {folder} is not writable (the store and its lock "
                               "file go there)")
        if os.path.exists(cache.path) and (not os.path.isfile(cache.path) or not os.access(cache.path, os.W_OK)):
            _fail(config, key, f"{cache.path}: exists and is not a writable file")


def _probe_pid_file(config: Config) -> None:
    """Start writes the pid file by rename from a file beside it: try creating one there."""
    path = config.process.pid_file
    if os.path.isdir(path):
        _fail(config, PID_FILE_KEY, f"{path}: is a directory")
    probe = f"{path}.{os.getpid()}{PROBE_SUFFIX}"
    try:
        with open(probe, "w", encoding="ascii"):
            pass
    except OSError as exc:
        _fail(config, PID_FILE_KEY, f"cannot write {path}: {exc.strerror or exc}")
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _probe_admin_socket(config: Config) -> None:
    path = config.admin_socket
    if len(os.fsencode(path)) >= UNIX_PATH_MAX:
        _fail(config, ADMIN_SOCKET_KEY, f"{path}: longer than a Unix socket path may be ({UNIX_PATH_MAX - 1} bytes)")
    if os.path.isdir(path):
        _fail(config, ADMIN_SOCKET_KEY, f"{path}: is a directory")
    if os.path.exists(path) and (pid := peer_pid(path)) is not None and title_of(pid) != master_title(
            os.path.abspath(config.path)):
        _fail(config, ADMIN_SOCKET_KEY, f"cannot open admin socket {path}: another running process answers on it "
                                        f"(pid {pid}: {title_of(pid) or '?'})")
    probe = os.path.join(os.path.dirname(path) or ".", f"{PROBE_SUFFIX}-{os.getpid()}")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(probe)
        except OSError as exc:
            _fail(config, ADMIN_SOCKET_KEY, f"cannot open admin socket {path}: {exc.strerror or exc}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(probe)


def _open_access_log(config: Config) -> None:
    """Start opens the access log file for appending when an HTTP listener logs to one (as `nginx -t`, this
    creates it when missing)."""
    http = config.http
    if not http.access_log_path or http.access_log == "off" or all(lst.mode != "http" for lst in config.listeners):
        return
    try:
        with open(http.access_log_path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        _fail(config, ACCESS_LOG_KEY, f"cannot open {http.access_log_path}: {exc.strerror or exc}")


def load_tls(config: Config) -> None:
    """Start reads every certificate, key, CA and roots file the TLS keys name and builds the served chains;
    the check does the same validation (rsp.tls.server_context.plan_tls_server, rsp.tls.client_context raise
    ConfigErrors naming the key) but builds no server context: that is OpenSSL's work per certificate, which
    the new worker does anyway, each on first use. The master runs it at start and at each reload: the
    certificates it validates go to the workers with the config (rsp.master.spawn), so a worker does not
    validate them again, and the master remembers them for the next reload (rsp.tls.server_context)."""
    for spec in config.tls.listeners.values():
        plan_tls_server(config, spec)
    for pool_tls in config.tls.pools.values():
        build_backend_context(config, pool_tls)


def located(config: Config, key: str, message: str) -> StartupError:
    """A start failure caused by one config entry, in the format of every config error (`FILE:LINE: key:
    message`, rsp.errors.ConfigError.render): a busy port at start reads as it does in `rsp --check`."""
    return StartupError(ConfigError(message, path=config.path, line=line_of(config.lines, key), key=key).render())


def bind_configured(config: Config, key: str, host: str, port: int) -> socket.socket:
    """rsp.transport.listener.bind_listener for the config entry `key`; its error names file, line and key."""
    try:
        return bind_listener(host, port)
    except StartupError as exc:
        raise located(config, key, str(exc)) from exc.__cause__


def admin_socket_error(config: Config, exc: OSError | StartupError) -> StartupError:
    """The admin socket's failure at start, located (a live rsp answering on it, or the bind's errno)."""
    message = str(exc) if isinstance(exc, StartupError) else (
        f"cannot open admin socket {config.admin_socket}: {exc.strerror or exc}")
    return located(config, ADMIN_SOCKET_KEY, message)


def stats_bind_error(config: Config, host: str, port: int, exc: OSError) -> StartupError:
    """The stats listener's bind failure, located; asyncio's OSError says `error while attempting to bind on
    address ('127.0.0.1', 9100): ...`: only the errno's own words are kept."""
    why = "address already in use" if exc.errno == errno.EADDRINUSE else (
        os.strerror(exc.errno) if exc.errno else str(exc))
    return located(config, STATS_KEY, f"cannot listen for stats on {host}:{port}: {why}")


def _fail(config: Config, key: str, message: str) -> NoReturn:
    raise ConfigError(f"{key}: {message}" if key else message, path=config.path, line=line_of(config.lines, key),
                      key=key)
