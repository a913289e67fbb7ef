"""rsp: a reverse proxy and load balancer that never loses a byte, configured in Lua."""

__version__ = "0.1.0"
