"""What h2 (with rsp's frame gate and checks) costs per HTTP/2 request, before any proxying.

    PYTHONPATH=src python bench/h2_codec_cost.py              # µs per request (best of 7 windows)
    PYTHONPATH=src python bench/h2_codec_cost.py --callgrind  # + instructions per request (valgrind)

One request is what h2load -m 10 sends for a small GET: a HEADERS frame of a browser-like request (12
fields, HPACK-encoded by a real client, so later requests reuse its dynamic table), fed to
rsp.http2.server.ServerConnection; the events out (RequestOpened + RequestEnded, with the neutral Request
built); then a 200 response head with 4 fields, a 100-byte body and the end (HEADERS + DATA with
END_STREAM), taken out with data_to_send(). Ten streams per read, as with -m 10. The split shows where the
time goes: receive (frame gate + h2 parse + HPACK decode + rsp's request checks) and respond (HPACK
encode + framing + flow-control accounting).

Instructions come from callgrind's total for two run lengths, differenced, so the interpreter's start-up
cancels out; they repeat to within a percent under load, where wall-clock figures do not (COMMON.md).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time

import h2.config
import h2.connection
import h2.events

from rsp.config.model import Http2Settings
from rsp.http2.events import RequestOpened
from rsp.http2.server import ServerConnection
from rsp.pipeline.messages import Response

BATCH = 10  # streams per read (h2load -m 10)
REQUEST = [(":method", "GET"), (":scheme", "https"), (":authority", "bench.example"), (":path", "/small"),
           ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleGecko/20100101 Firefox/128.0"),
           ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
           ("accept-language", "en-US,en;q=0.5"), ("accept-encoding", "gzip, deflate, br"),
           ("cookie", "session=0123456789abcdef"), ("upgrade-insecure-requests", "1"),
           ("sec-fetch-dest", "document"), ("sec-fetch-mode", "navigate")]
RESPONSE = Response(200, [(b"server", b"nginx"), (b"date", b"Sun, 06 Dec 2026 22:00:00 GMT"),
                          (b"content-type", b"text/html"), (b"content-length", b"100")], body_length=100)
BODY = b"x" * 100
SETTINGS = Http2Settings(max_streams_per_connection=10**9, max_concurrent_streams=1000)


class Bench:
    """A client and a server connection in memory, advancing stream ids by BATCH per round."""

    def __init__(self) -> None:
        self.server = ServerConnection(SETTINGS, time.monotonic)
        self.client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.client.initiate_connection()
        self.server.receive(self.client.data_to_send())
        self.client.receive_data(self.server.data_to_send())
        self.next_id = 1
        self.requests: bytes = b""

    def make_requests(self) -> bytes:
        ids = range(self.next_id, self.next_id + 2 * BATCH, 2)
        self.next_id += 2 * BATCH
        for sid in ids:
            self.client.send_headers(sid, REQUEST, end_stream=True)
        return self.client.data_to_send()

    def receive(self, data: bytes) -> list[int]:
        return [e.stream_id for e in self.server.receive(data) if isinstance(e, RequestOpened)]

    def respond(self, ids: list[int]) -> bytes:
        srv = self.server
        for sid in ids:
            srv.send_head(sid, RESPONSE)
            srv.send_data(sid, BODY)
            srv.send_end(sid, [])
        return srv.data_to_send()

    def client_read(self, out: bytes) -> None:
        """The client reads the answers and reopens its windows (as h2load does)."""
        for event in self.client.receive_data(out):
            if isinstance(event, h2.events.DataReceived) and event.stream_id:
                self.client.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)

    def round(self) -> None:
        self.client_read(self.respond(self.receive(self.make_requests())))


def split_figures(windows: int = 7, calls: int = 40) -> tuple[float, float, float]:
    """µs per request, best window each: receive, respond (with the client's read of it), the client's
    request encoding. Each window prepares `calls` batches, receives them all, then answers them all."""
    bench = Bench()
    bench.round()
    best = [float("inf")] * 3
    per = calls * BATCH
    for _ in range(windows):
        t0 = time.process_time()
        prepared = [bench.make_requests() for _ in range(calls)]
        t1 = time.process_time()
        ids = [bench.receive(data) for data in prepared]
        t2 = time.process_time()
        for batch in ids:
            bench.client_read(bench.respond(batch))
        t3 = time.process_time()
        for i, spent in enumerate((t2 - t1, t3 - t2, t1 - t0)):
            best[i] = min(best[i], spent / per * 1e6)
    return best[0], best[1], best[2]


def run_rounds(n: int) -> None:
    bench = Bench()
    for _ in range(n):
        bench.round()


def callgrind_per_request() -> float:
    """Instructions per request of one whole round (client included: the figure is an upper bound for the
    server's part; the client's share is about the server's, as both run h2)."""
    totals = []
    for rounds in (20, 120):
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                               __file__, "--rounds", str(rounds)], capture_output=True, text=True, check=True)
        match = re.search(r"Collected : (\d+)", proc.stderr)
        assert match, proc.stderr[-500:]
        totals.append(int(match.group(1)))
    return (totals[1] - totals[0]) / (100 * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callgrind", action="store_true", help="also count instructions (valgrind)")
    parser.add_argument("--rounds", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds:
        run_rounds(args.rounds)
        return
    receive_us, respond_us, client_us = split_figures()
    print(f"h2 {h2.__version__}, {BATCH} streams per read, best of 7 windows (CPU time)")
    print(f"  receive (gate + h2 parse + HPACK decode + Request): {receive_us:7.1f} µs/request")
    print(f"  respond (head + 100 B body + end, data_to_send):   {respond_us:7.1f} µs/request "
          "(includes the test client's parse of it)")
    print(f"  the test client's request encoding (not rsp's):    {client_us:7.1f} µs/request")
    if args.callgrind:
        print(f"  one whole round, client included: {callgrind_per_request():,.0f} instructions/request")


if __name__ == "__main__":
    main()
