"""`rsp --check`'s second half: what start would ask of the system, tried and undone (like `nginx -t`).

A config can be valid and still fail to start: a listen port already in use, a backend host name that does
not resolve, an admin socket or an access log in a directory that does not exist. `check_startable` does each of those
exactly as the server's start does (the same functions: rsp.transport.listener.bind_listener, with its
SO_REUSEADDR, and rsp.proxy.pools.resolve_backend), then closes what it opened, and names the file, the line
and the key of the entry at fault.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Final, NoReturn

from rsp.config.key_lines import line_of
from rsp.config.model import Config
from rsp.errors import ConfigError, StartupError
from rsp.proxy.pools import resolve_backend
from rsp.tls.client_context import build_backend_context
from rsp.tls.server_context import build_tls_server
from rsp.transport.listener import bind_listener

ADMIN_SOCKET_KEY: Final = "admin_socket"
ACCESS_LOG_KEY: Final = "http.access_log_path"
# sockaddr_un.sun_path on Linux holds 108 bytes including the terminating NUL (unix(7)).
UNIX_PATH_MAX: Final = 108
# The probe socket bound beside the admin socket's path: its own name, so that a running rsp's socket at
# that path is left alone.
PROBE_SUFFIX: Final = ".rsp-check"


def check_startable(config: Config) -> None:
    """Bind every listener (all at once, as start holds them), resolve every backend (health checks connect
    to the same hosts), bind a socket where the admin socket would go and open the access log file; close
    them all. Raises ConfigError."""
    sockets: list[socket.socket] = []
    try:
        for listener in config.listeners:
            try:
                sockets.append(bind_listener(listener.host, listener.port))
            except StartupError as exc:
                _fail(config, listener.key, str(exc))
        check_resolvable_and_files(config)
    finally:
        for sock in sockets:
            sock.close()


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
    _load_tls(config)
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


def _probe_admin_socket(config: Config) -> None:
    path = config.admin_socket
    if len(os.fsencode(path)) >= UNIX_PATH_MAX:
        _fail(config, ADMIN_SOCKET_KEY, f"{path}: longer than a Unix socket path may be ({UNIX_PATH_MAX - 1} bytes)")
    if os.path.isdir(path):
        _fail(config, ADMIN_SOCKET_KEY, f"{path}: is a directory")
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


def _load_tls(config: Config) -> None:
    """Start reads every certificate, key, CA and roots file the TLS keys name and builds the served chains;
    the check does the same (rsp.tls.server_context, rsp.tls.client_context raise ConfigErrors naming the key)."""
    for spec in config.tls.listeners.values():
        build_tls_server(config, spec)
    for pool_tls in config.tls.pools.values():
        build_backend_context(config, pool_tls)


def _fail(config: Config, key: str, message: str) -> NoReturn:
    raise ConfigError(f"{key}: {message}" if key else message, path=config.path, line=line_of(config.lines, key),
                      key=key)
