"""The tests' free_port(): a port nothing listens on, and never one it handed out lately (two calls in a row once
gave one port twice, and rsp refused a config whose stats port was its listener's)."""

from __future__ import annotations

import socket

from support.rsp_process import RECENT_PORTS, free_port


def test_free_port_never_repeats_a_recent_port_and_each_is_bindable() -> None:
    ports = [free_port() for _ in range(RECENT_PORTS)]
    assert len(set(ports)) == RECENT_PORTS
    for port in ports[-3:]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # nothing holds it
