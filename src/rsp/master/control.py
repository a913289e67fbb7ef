"""The master<->worker control channel's codec: one JSON object per line (sans-IO: bytes in, messages out).

A socketpair per worker carries it (rsp.master.spawn). JSON keeps the messages readable in strace and
needs nothing beyond the standard library; a line is small (a backend state document, a counter
snapshot) and the channel is idle between events.

Messages (the "t" key names the type):
  master -> worker  backends {pools: {pool: [backend state, ...]}}  the machine's backend state (health,
                                                  drain, weight, added/removed backends): rsp.master.backend_state
                    eject {pool, backend}         another worker passively ejected this backend
                    stop {grace}                  stop accepting, finish what you hold for `grace` s (reload)
                    snapshot {id}                 reply with your counters
                    reopen                        reopen the log files (SIGUSR1)
                    route {host, backends, status, cached, state}  the answer to `lookup`
                    routed {host, backends}       the machine's route of `host` changed ([]: it has none)
  worker -> master  ready                         the worker serves its listeners
                    ejected {pool, backend}       this worker's traffic ejected a backend
                    snapshot {id, data}           the reply to `snapshot`
                    stopping                      the reply to `stop`: this worker accepts no more connections
                    lookup {host}                 a request for a host this worker has no route for
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from rsp.errors import ControlError

# A snapshot of a large pool set is the biggest message; 4 MiB is far above it and still bounds what a
# broken peer can make the other side buffer.
MAX_MESSAGE_BYTES: Final = 4 * 1024 * 1024

BACKENDS: Final = "backends"
EJECT: Final = "eject"
STOP: Final = "stop"
SNAPSHOT: Final = "snapshot"
REOPEN: Final = "reopen"
READY: Final = "ready"
EJECTED: Final = "ejected"
STOPPING: Final = "stopping"
LOOKUP: Final = "lookup"
ROUTE: Final = "route"
ROUTED: Final = "routed"


def encode(message: Mapping[str, Any]) -> bytes:
    """One message as one line. `separators` without spaces: the channel carries no human."""
    if not isinstance(message.get("t"), str):
        raise ControlError("a control message needs a string 't' (its type)")
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class Decoder:
    """Feed bytes as they arrive, get whole messages out."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """The messages completed by `data`. Raises ControlError on a line that is not a message, or on a
        line longer than MAX_MESSAGE_BYTES (then the channel is not worth keeping)."""
        self._buffer += data
        messages: list[dict[str, Any]] = []
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end < 0:
                break
            messages.append(decode_line(bytes(self._buffer[start:end])))
            start = end + 1
        del self._buffer[:start]
        if len(self._buffer) > MAX_MESSAGE_BYTES:
            raise ControlError(f"control message longer than {MAX_MESSAGE_BYTES} bytes")
        return messages


def decode_line(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ControlError(f"control line is not JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ControlError("control message is not an object with a string 't'")
    return message
