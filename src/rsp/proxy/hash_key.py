"""The key a hashing balancer (consistent hash, rsp.balance) places a request by: the pool's `hash_key`
setting read off the request head. A plain function of the head, so that it is tested without a session."""

from __future__ import annotations

from rsp.config.model import Pool
from rsp.http1.events import RequestHead


def balance_key(spec: Pool, head: RequestHead, client_ip: str) -> bytes:
    """`uri`: the target; `header`: the named field's first value; `cookie`: the named cookie's value (b""
    when absent); anything else: the client's address."""
    if spec.hash_key == "uri":
        return head.target
    if spec.hash_key in ("header", "cookie"):
        wanted = spec.hash_name.lower().encode() if spec.hash_key == "header" else b"cookie"
        for name, value in head.headers:
            if name.lower() == wanted:
                if spec.hash_key == "header":
                    return value
                for part in value.split(b";"):
                    k, _, v = part.strip().partition(b"=")
                    if k == spec.hash_name.encode():
                        return v
        return b""
    return client_ip.encode()
