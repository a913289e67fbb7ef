"""One end of a master<->worker control socket on an event loop: messages in through a callback, messages out
without blocking (a small queue drained when the socket is writable)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from typing import Any, Final

from rsp.errors import ControlError
from rsp.logs import get_logger
from rsp.master.control import Decoder, encode

READ_SIZE: Final = 256 * 1024


class Channel:
    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, name: str,
                 on_message: Callable[[dict[str, Any]], None], on_close: Callable[[], None]) -> None:
        self.loop = loop
        self.sock = sock
        self.name = name
        self._on_message = on_message
        self._on_close = on_close
        self._decoder = Decoder()
        self._out = bytearray()
        self._writing = False
        self.closed = False
        sock.setblocking(False)
        loop.add_reader(sock.fileno(), self._readable)

    def send(self, message: Mapping[str, Any]) -> None:
        if self.closed:
            return
        self._out += encode(message)
        if not self._writing:
            self._flush()

    def _flush(self) -> None:
        try:
            while self._out:
                sent = self.sock.send(self._out)
                del self._out[:sent]
        except BlockingIOError:
            pass
        except OSError:
            self.close()
            return
        if self._out and not self._writing:
            self._writing = True
            self.loop.add_writer(self.sock.fileno(), self._writable)
        elif not self._out and self._writing:
            self._writing = False
            self.loop.remove_writer(self.sock.fileno())

    def _writable(self) -> None:
        self._flush()

    def _readable(self) -> None:
        try:
            data = self.sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.close()
            return
        try:
            messages = self._decoder.feed(data)
        except ControlError as exc:
            get_logger().error("control channel of %s: %s; closing it", self.name, exc)
            self.close()
            return
        for message in messages:
            try:
                self._on_message(message)
            except (KeyError, TypeError, ValueError) as exc:
                get_logger().error("control channel of %s: cannot apply %s: %r", self.name, message.get("t"), exc)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        fd = self.sock.fileno()
        self.loop.remove_reader(fd)
        if self._writing:
            self.loop.remove_writer(fd)
        self.sock.close()
        self._on_close()
