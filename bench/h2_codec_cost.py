"""What rsp's HTTP/2 server connection (frame gate, frame layer, HPACK, request checks) costs per request,
before any proxying.

    PYTHONPATH=src python bench/h2_codec_cost.py              # µs per request (best of 7 windows)
    PYTHONPATH=src python bench/h2_codec_cost.py --callgrind  # + instructions per request (valgrind)

One request is what h2load -m 10 sends for a small GET: a HEADERS frame of a browser-like request (12
fields, HPACK-encoded by a real client, so later requests reuse its dynamic table), fed to
rsp.http2.server.ServerConnection; the events out (RequestOpened + RequestEnded, with the neutral Request
built); then a 200 response head with 4 fields, a 100-byte body and the end (HEADERS + DATA with
END_STREAM), taken out with data_to_send(). Ten streams per read, as with -m 10. The split shows where the
time goes: receive (frame gate + frame parse + HPACK decode + rsp's request checks) and respond (HPACK
encode + framing + flow-control accounting). The client is h2 (its encoding is done in advance and
cancels out of the callgrind difference).

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

import rsp.http2.server
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


def encoded_rounds(rounds: int) -> list[bytes]:
    """What a client sends for `rounds` reads of BATCH requests each, encoded in advance (its HPACK state
    runs in order, as the server decodes it). The first read carries the preface, SETTINGS and a connection
    window opened wide, so the server is never held back; the client never reads the answers (not counted)."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.increment_flow_control_window(2**30)
    out = []
    sid = 1
    for _ in range(rounds):
        for _ in range(BATCH):
            client.send_headers(sid, REQUEST, end_stream=True)
            sid += 2
        out.append(client.data_to_send())
    return out


class ServerSide:
    """The server connection and the pre-encoded reads it is fed."""

    def __init__(self, rounds: int) -> None:
        self.reads = encoded_rounds(rounds + 1)
        self.server = ServerConnection(SETTINGS, time.monotonic)
        self.next = 0
        self.round()  # the first read: preface, SETTINGS, the first requests

    def receive(self) -> list[int]:
        data = self.reads[self.next]
        self.next += 1
        return [e.stream_id for e in self.server.receive(data) if isinstance(e, RequestOpened)]

    def respond(self, ids: list[int]) -> bytes:
        srv = self.server
        for sid in ids:
            srv.send_head(sid, RESPONSE)
            srv.send_data(sid, BODY)
            srv.send_end(sid, [])
        return srv.data_to_send()

    def round(self) -> None:
        self.respond(self.receive())


def split_figures(windows: int = 7, calls: int = 40) -> tuple[float, float]:
    """µs per request, best window each: receive (frames in, headers decoded, Request built) and respond
    (head encoded, body framed, end)."""
    side = ServerSide(windows * calls)
    best = [float("inf")] * 2
    per = calls * BATCH
    for _ in range(windows):
        t0 = time.process_time()
        ids = [side.receive() for _ in range(calls)]
        t1 = time.process_time()
        for batch in ids:
            side.respond(batch)
        t2 = time.process_time()
        best[0] = min(best[0], (t1 - t0) / per * 1e6)
        best[1] = min(best[1], (t2 - t1) / per * 1e6)
    return best[0], best[1]


# The callgrind runs encode this many rounds whatever they process, so that the client's encoding cancels
# out of the difference of two runs.
ENCODED_ROUNDS = 130


def run_rounds(n: int) -> None:
    side = ServerSide(ENCODED_ROUNDS)
    for _ in range(n):
        side.round()


def callgrind_per_request() -> float:
    """Instructions per request of the server side (receive and respond), from two run lengths."""
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
    receive_us, respond_us = split_figures()
    compiled = rsp.http2.server.__file__.endswith(".so")
    print(f"rsp.http2 ({'compiled' if compiled else 'pure Python'}), {BATCH} streams per read, server side "
          "only, best of 7 windows (CPU time)")
    print(f"  receive (gate + frames + HPACK decode + Request):   {receive_us:7.1f} µs/request")
    print(f"  respond (head + 100 B body + end, data_to_send):   {respond_us:7.1f} µs/request")
    print(f"  total:                                             {receive_us + respond_us:7.1f} µs/request")
    if args.callgrind:
        print(f"  server side, callgrind: {callgrind_per_request():,.0f} instructions/request")


if __name__ == "__main__":
    main()
