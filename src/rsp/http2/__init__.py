"""HTTP/2 to clients: a sans-IO server connection over the `h2` package with rsp's own limits (docs/http2.md)."""
