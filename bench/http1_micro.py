"""Micro-benchmark of rsp's HTTP/1.1 hot path: parse and forward one small keep-alive exchange.

    .venv/bin/python bench/http1_micro.py                    # ~15 s
    .venv/bin/python bench/http1_micro.py --quick            # ~4 s
    .venv/bin/python bench/http1_micro.py --against 9b3f47c  # before/after: that commit's rsp.http1 vs this tree

Prints the cost per call in microseconds of:

- request parse: `RequestParser.feed(head)` on a parser kept across calls (a keep-alive connection),
  once with the same head every call (the parser's one-head memo answers, as for wrk's identical
  requests) and once with a head that differs from the previous one (a full parse);
- response parse: `ResponseParser.expect(b"GET"); feed(response)` the same two ways (the "new" response
  differs in the Date field, as nginx's does once a second);
- forward.request_head, and forward.response_framing + response_head, with the HTTP mode's defaults
  (Via on, untrusted peer);

for a minimal GET (what wrk sends), a 12-field browser-like GET, and nginx's answer to /small (status
line, 8 fields, 97-byte body).

Each figure is the best of many short windows (CPU time of this process), the steps taking turns: this
VM has slow phases lasting seconds in which everything costs 1.5-2.5 times more, and the best window is
what the code costs. Compare figures taken side by side only: --against runs the two trees alternately
(3 runs each, separate processes) and keeps each one's best.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path

from rsp.http1 import forward
from rsp.http1.events import Event, RequestHead, ResponseHead
from rsp.http1.parser import RequestParser, ResponseParser

SMALL_GET = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1:19201\r\n\r\n"

BROWSER_GET = (
    b"GET /assets/app.js?v=3 HTTP/1.1\r\n"
    b"Host: www.example.com\r\n"
    b"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
    b"Accept: */*\r\n"
    b"Accept-Language: en-US,en;q=0.5\r\n"
    b"Accept-Encoding: gzip, deflate, br, zstd\r\n"
    b"Referer: https://www.example.com/\r\n"
    b"Connection: keep-alive\r\n"
    b"Cookie: session=8f2a7c1e9b4d; theme=dark; _ga=GA1.2.123456789.1700000000\r\n"
    b"Sec-Fetch-Dest: script\r\n"
    b"Sec-Fetch-Mode: no-cors\r\n"
    b"Sec-Fetch-Site: same-origin\r\n"
    b"If-None-Match: \"66b0c1f2-61\"\r\n"
    b"\r\n"
)

BODY_97 = b"x" * 96 + b"\n"
NGINX_SMALL = (
    b"HTTP/1.1 200 OK\r\n"
    b"Server: nginx/1.22.1\r\n"
    b"Date: Mon, 05 Aug 2024 10:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 97\r\n"
    b"Last-Modified: Mon, 05 Aug 2024 09:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b'ETag: "66b0c1f2-61"\r\n'
    b"Accept-Ranges: bytes\r\n"
    b"\r\n" + BODY_97
)

# The same heads with one byte changed: a parser's one-head memo does not answer for them.
SMALL_GET_OTHER = SMALL_GET.replace(b"/small", b"/smalm")
BROWSER_GET_OTHER = BROWSER_GET.replace(b"app.js", b"app.jt")
NGINX_SMALL_NEXT_SECOND = NGINX_SMALL.replace(b"10:00:00 GMT", b"10:00:01 GMT")

STEPS = (
    "request parse (repeated head)",
    "request parse (new head)",
    "response parse (repeated head)",
    "response parse (new head)",
    "forward.request_head",
    "forward.response_framing+head",
)
ROOT = Path(__file__).resolve().parent.parent
RUNS = 3  # per tree with --against


def best_per_call_us(fns: list[Callable[[], object]], number: int, rounds: int) -> list[float]:
    """Best time per call of each function, in microseconds. The functions take turns, `rounds` times
    `number` calls each: on a shared (virtual) machine whole seconds run slow, and the best of many short
    interleaved windows is what the code costs, not what the neighbours did meanwhile."""
    timers = [timeit.Timer(fn, timer=time.process_time) for fn in fns]
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for index, timer in enumerate(timers):
            best[index] = min(best[index], timer.timeit(number))
    return [value / number * 1e6 for value in best]


def request_parse(data: bytes, other: bytes) -> tuple[Callable[[], object], Callable[[], object], RequestHead]:
    """(parse the same head each call, parse a different head each call, the head)."""
    parser = RequestParser()
    feed = parser.feed
    events = feed(data)
    head = events[0]
    assert isinstance(head, RequestHead) and len(events) == 2 and parser.idle
    assert feed(other)[0] != head

    def alternate() -> object:
        feed(data)
        return feed(other)

    return (lambda: feed(data)), alternate, head


def response_parse(data: bytes, other: bytes) -> tuple[Callable[[], object], Callable[[], object], ResponseHead]:
    parser = ResponseParser()
    expect = parser.expect
    feed = parser.feed

    def once() -> list[Event]:
        expect(b"GET")
        return feed(data)

    def alternate() -> object:
        expect(b"GET")
        feed(data)
        expect(b"GET")
        return feed(other)

    events = once()
    head = events[0]
    assert isinstance(head, ResponseHead) and parser.pending == 0 and parser.idle
    return once, alternate, head


def measure(quick: bool) -> list[tuple[str, str, float]]:
    number, rounds = (1_000, 10) if quick else (1_000, 40)
    response, response_varied, response_head = response_parse(NGINX_SMALL, NGINX_SMALL_NEXT_SECOND)
    rows: list[tuple[str, str, float]] = []
    for label, request_bytes, other_bytes in (
        ("small GET", SMALL_GET, SMALL_GET_OTHER),
        ("12-field GET", BROWSER_GET, BROWSER_GET_OTHER),
    ):
        request, request_varied, head = request_parse(request_bytes, other_bytes)

        def req_fwd(head: RequestHead = head) -> bytes:
            return forward.request_head(head, "127.0.0.1", trusted=False, forwarded=False, via=True)

        def resp_fwd(head: RequestHead = head) -> bytes:
            chunked, keep = forward.response_framing(response_head, head)
            return forward.response_head(response_head, request=head, keep_alive=keep, chunked=chunked, via=True)

        values = best_per_call_us(
            [request, request_varied, response, response_varied, req_fwd, resp_fwd], number, rounds
        )
        # The "varied" callables parse two heads per call.
        values[1] /= 2
        values[3] /= 2
        rows.extend((label, step, value) for step, value in zip(STEPS, values, strict=True))
    return rows


def run_tree(src: Path | None, quick: bool) -> list[tuple[str, str, float]]:
    """measure() in a fresh interpreter importing rsp from `src` (this tree when None)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [sys.executable, __file__, "--json"] + (["--quick"] if quick else [])
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=600).stdout
    return [(label, step, value) for label, step, value in json.loads(out)]


def against(revision: str, quick: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "src.tar"
        command = ["git", "-C", str(ROOT), "archive", revision, "src/rsp"]
        with archive.open("wb") as handle:
            subprocess.run(command, stdout=handle, check=True, timeout=60)
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        before: dict[tuple[str, str], float] = {}
        after: dict[tuple[str, str], float] = {}
        for _ in range(RUNS):
            for tree, best in ((Path(tmp) / "src", before), (None, after)):
                for label, step, value in run_tree(tree, quick):
                    best[(label, step)] = min(best.get((label, step), value), value)
    print(f"{'request':<14}{'step':<34}{revision:>10}{'this tree':>11}{'ratio':>7}")
    for (label, step), value in after.items():
        old = before[(label, step)]
        print(f"{label:<14}{step:<34}{old:>10.2f}{value:>11.2f}{old / value:>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    ap.add_argument("--against", metavar="REV", help="also measure the rsp.http1 of this git revision")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.against:
        against(args.against, args.quick)
        return
    rows = measure(args.quick)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'request':<14}{'step':<34}{'us/call':>9}")
    for label, step, value in rows:
        print(f"{label:<14}{step:<34}{value:>9.2f}")
    print(
        "\nrepeated: the parser's one-head memo answers (same bytes as the previous head on the connection);\n"
        "new: every head differs from the previous one (one byte of the target or of Date), a full parse."
    )


if __name__ == "__main__":
    main()
