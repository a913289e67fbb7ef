"""A minimal keep-alive HTTP/1.1 server for bench/run_sandbox.py: a fixed 13-byte answer to every request.

Listens on $PORT on every address; the benchmark runs it once in a namespace and once on loopback, so the
only difference rsp sees is the path to the app.
"""

import asyncio
import os

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world\n"


class Http(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")  # GET requests without bodies: one head each
        if count:
            self.buffer = self.buffer[self.buffer.rindex(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * count)  # type: ignore[attr-defined]


async def main() -> None:
    server = await asyncio.get_running_loop().create_server(Http, "0.0.0.0", int(os.environ["PORT"]), backlog=256)
    await server.serve_forever()


asyncio.run(main())
