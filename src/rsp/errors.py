"""The few exception types of rsp.

Library code raises these; only `rsp.cli` turns them into exit codes. Expected network failures
(connection refused, a backend going away) are not exceptions: they are events handled where they occur.
"""

from __future__ import annotations


class RspError(Exception):
    """Base of every error rsp raises on purpose."""


class ConfigError(RspError):
    """A configuration file cannot be used. Carries the file, the Lua line where known, and the key."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, key: str = "") -> None:
        self.message = message
        self.path = path
        self.line = line
        self.key = key
        super().__init__(self.render())

    def render(self) -> str:
        """`FILE:LINE: key: message`, the one format of every config error (the key is not repeated when the
        message starts with it: `FILE:2: listen[1].port must be a port number`)."""
        message = self.message
        if self.key and not message.startswith(self.key):
            message = f"{self.key}: {message}"
        where = self.path
        if where and self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {message}" if where else message


class ProtocolError(RspError):
    """A peer broke the protocol. `status` is the HTTP status to answer with (RFC 9110 §15)."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


class ScriptError(RspError):
    """A Lua script failed at run time (not at load time: that is a ConfigError)."""


class PipelineError(RspError):
    """A filter asked the request pipeline for something it cannot do (replace a body it does not hold)."""


class SandboxError(RspError):
    """A namespace or process-isolation operation failed."""


class StartupError(RspError):
    """The server could not start: a port in use, an address that cannot be bound. `key`, when a config
    entry is at fault, lets rsp.cli name its file and line (rsp.preflight.located). `errno`: the system
    call's error number when one failed (0 otherwise): callers test it rather than `__cause__`, which a
    compiled raise does not set."""

    def __init__(self, message: str = "", *, key: str = "", errno: int = 0) -> None:
        self.key = key
        self.errno = errno
        super().__init__(message)


class ClientHelloError(RspError):
    """The first bytes of a connection are not a well-formed TLS ClientHello (rsp.tls.client_hello)."""


class CertificateError(RspError):
    """A certificate file cannot be used: unreadable, not PEM, a block that does not parse, no certificate.

    The message names the source (a file path) and, for a bad block, its number (1-based, in file order).
    """


class PamError(RspError):
    """The PAM session module cannot do its job: a bad module argument, a pam.d file rsp will not edit, or a
    namespace step that failed (the message is the reason the module logs)."""


class RouteStoreError(RspError):
    """The route store's Redis cannot be reached, or a route command's arguments are wrong (`rsp routes`)."""


class MetricsError(RspError):
    """Metrics that cannot be combined (snapshots of workers with different histogram buckets)."""


class ControlError(RspError):
    """A message on the master<->worker control channel is not one rsp writes (rsp.master.control)."""


class CacheStoreError(RspError):
    """The response cache's store failed (an LMDB error other than a full map, rsp.cache.store): the cache
    then passes the exchange through as if it were not there."""


class Http2ConnectionError(ProtocolError):
    """An HTTP/2 client broke the protocol or a limit in a way that ends its connection (RFC 9113 §5.4.1):
    `error_code` is the GOAWAY error code to send (rsp.http2.codes), the message says which limit or rule."""

    def __init__(self, message: str, error_code: int) -> None:
        self.error_code = error_code
        super().__init__(message, 400)


class HpackDecodingError(Http2ConnectionError):
    """A header block that does not decode (RFC 7541): COMPRESSION_ERROR for the connection (RFC 9113 §4.3),
    or the code given (ENHANCE_YOUR_CALM for a header list over the advertised limit)."""

    def __init__(self, message: str, error_code: int = 0x9) -> None:
        super().__init__(message, error_code)


class MalformedRequest(ProtocolError):
    """An HTTP/2 request or trailer section that breaks RFC 9113 §8 (a stream error of type PROTOCOL_ERROR,
    rsp.http2.heads)."""
