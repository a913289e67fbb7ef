"""Sans-IO HTTP/1.1 parsers: bytes in, events out (RFC 9112).

API (one call per `data_received`, the shape an asyncio Protocol wants):

    parser = RequestParser()
    for event in parser.feed(data):      # data=b"" means the peer closed (EOF)
        ...                              # RequestHead, Data*, EndOfMessage, next RequestHead...

`feed()` returns every event the bytes complete, in order, across pipelined messages; a list is cheaper
than an h11-style `next_event()` loop (one call and one list per read instead of one call per event plus
a NEED_DATA sentinel). On a protocol violation it raises `rsp.errors.ProtocolError` whose `status` is
the answer to give (400, 414, 431, 501, 505 for requests; always 502 for responses); events completed
earlier in the same call are lost with it, so the connection must be answered and closed. The parser
parses nothing afterwards (later feeds return []), as after the end of the stream.

After a request that asks to switch protocols (`head.upgrade`, or method CONNECT) and after a 101 or a
2xx-to-CONNECT response, the parser pauses: later bytes are kept, not parsed. `take_trailing_data()`
returns them when the switch happens (they belong to the tunnel); `resume()` parses them as HTTP when
it does not (the backend refused the upgrade). After a message that ends the connection
(`keep_alive` false) the parser ignores everything else: nothing after it may reach a backend.

Bodies are handed out as `Data` holding slices of the received bytes (the very object received when a
read is all body); nothing is copied twice. Heads are parsed with compiled regular expressions over the
whole head at once: one expression for the usual shape of a head (the fast path), the general path for
everything else, and memos for a head identical or nearly identical to the previous one.

The parts, one job each (see rsp/http1/README.md): grammar (start lines, targets, chunk lines),
head_fields (the declaration of the fields that decide a verdict, the key of every head cache),
fast_path (the expression built from it), framing (the body state machine shared by both parsers),
verdict (the head's verdict, written once for both kinds), memo (what the memos share),
request_parser and response_parser (the heads of each kind). This module is the public entry point.
"""

from __future__ import annotations

from rsp.http1.request_parser import RequestParser, SharedHeads
from rsp.http1.response_parser import ResponseParser

__all__ = ["RequestParser", "ResponseParser", "SharedHeads"]
