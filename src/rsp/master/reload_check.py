"""What a reload checks before it starts anything: the new file loads and validates (rsp.config), and what
start would ask of the system works (rsp.preflight's checks), except the listeners already bound, which the
master keeps. A new listener is bound here for real, and kept if the reload goes on."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Final

from rsp.config.key_lines import line_of
from rsp.config.lua_loader import load_config
from rsp.config.model import Config, Listener
from rsp.errors import ConfigError, StartupError
from rsp.preflight import check_resolvable_and_files
from rsp.transport.listener import bind_listener

ListenKey = tuple[str, int]


def listen_key(listener: Listener) -> ListenKey:
    return (listener.host, listener.port)


def prepare_reload(path: str, bound: dict[ListenKey, socket.socket]) -> tuple[Config, dict[ListenKey, socket.socket]]:
    """Load and check the config at `path`; returns it with the sockets of its listeners not in `bound`
    (bound now). Raises ConfigError naming file, line and key; binds nothing when it raises."""
    config = load_config(path)
    check_resolvable_and_files(config)
    new: dict[ListenKey, socket.socket] = {}
    try:
        for listener in config.listeners:
            key = listen_key(listener)
            if key not in bound:
                new[key] = bind_listener(listener.host, listener.port)
    except StartupError as exc:
        for sock in new.values():
            sock.close()
        raise ConfigError(str(exc), path=config.path, line=line_of(config.lines, listener.key),
                          key=listener.key) from exc
    return config, new


# What a reload does not apply: set once per machine at start, kept until rsp restarts. (The listeners,
# pools, routes, TLS, timeouts and workers are the new generation's; `stats` is applied by the master.)
KEPT_AT_RELOAD: Final[tuple[tuple[str, Callable[[Config], object]], ...]] = (
    ("admin_socket", lambda c: c.admin_socket),
    ("error_log", lambda c: c.process.error_log),
    ("pid_file", lambda c: c.process.pid_file),
    ("apps", lambda c: c.sandbox),
)


def kept_settings(old: Config, new: Config) -> list[str]:
    """One line per changed setting that the reload keeps as it was, for the reply and the log."""
    return [f"{key} changed but is kept as it was until rsp restarts" for key, value in KEPT_AT_RELOAD
            if value(old) != value(new)]
