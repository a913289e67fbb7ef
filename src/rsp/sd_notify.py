"""systemd's readiness protocol (sd_notify(3)): one datagram to $NOTIFY_SOCKET, nothing when it is unset.

With `Type=notify` (contrib/rsp.service) systemd considers rsp started once it serves (READY=1, sent after
the Started lines), shows a reload in progress (RELOADING=1 ... READY=1) and the stop (STOPPING=1).
"""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send `state` ("READY=1", ...) if systemd asked for it; False when not under systemd or on failure."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address or address[0] not in "/@":
        return False
    target = "\0" + address[1:] if address[0] == "@" else address  # "@": the abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), target)
    except OSError:
        return False
    return True
