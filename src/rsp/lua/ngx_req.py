"""ngx.req's Python half: the request's head and body for a handler (`B.req_*`, `B.started`), and the call-state
helpers rsp.lua.bridge shares with it.

Split from the bridge by job: everything here reads or changes the exchange's Request (rsp.pipeline.phases
ExchangeView), in the phases OpenResty allows. The bridge puts these functions in the `B` table beside its own.
"""

from __future__ import annotations

from typing import Any, Final

from rsp.errors import PipelineError, ScriptError
from rsp.lua import ngx_text
from rsp.lua.host import CallState, LuaHost, Waiter
from rsp.lua.ngx_text import UNSAFE_VALUE_BYTES
from rsp.pipeline.messages import Request

REQUEST_PHASES: Final = frozenset({"rewrite", "access", "balancer"})
# Where OpenResty allows ngx.req.read_body and the body functions (its content phase is rsp's local answer).
BODY_PHASES: Final = frozenset({"rewrite", "access"})


def text_of(value: Any) -> bytes:
    """A Lua value as the bytes of its string form (integral numbers without `.0`)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value)).encode("ascii")
    return str(value).encode("utf-8")


def call_state(engine: LuaHost) -> CallState:
    """The call the engine runs now."""
    state = engine.current
    if state is None:
        raise ScriptError("the ngx API was called outside a handler")
    return state


def exchange_state(engine: LuaHost, what: str) -> CallState:
    """The call the engine runs now, which must have a request (`what`: the function, for the error)."""
    state = call_state(engine)
    if state.exchange is None:
        raise ScriptError(f"{what} needs a request (not available in {state.phase})")
    return state


def lua_values(engine: LuaHost, value: Any) -> list[bytes]:
    """A header value from Lua (a string, nil, or a table of them) as its field values, each one made safe to
    put in a head (ngx_text.safe_header_value)."""
    if isinstance(value, bytes):
        return [ngx_text.safe_header_value(value)]  # the common case, without asking Lua for the value's type
    if value is None:
        return []
    if engine.lupa.lua_type(value) == "table":
        return [ngx_text.safe_header_value(text_of(value[i])) for i in range(1, len(value) + 1)]
    return [ngx_text.safe_header_value(text_of(value))]


# The field name each name a handler sets stands for (escaped, lower-case, `_` as `-`), remembered: handlers
# set a few constant names, and the escape's search with the two case changes cost more than the edit itself.
# Bounded: a handler may build names from the request.
MAX_FIELD_KEYS: Final = 1024
_FIELD_KEYS: Final[dict[bytes, bytes]] = {}


def apply_edits(request: Request, edits: tuple[Any, ...], start: int) -> None:
    """Apply ngx.req.set_header / clear_header calls recorded by the Lua half: from `edits[start]` on, pairs of
    a name and a value (bytes), or False to clear; as req_set_header does one call with a string or nil."""
    for i in range(start, len(edits) - 1, 2):
        name = edits[i]
        value = edits[i + 1]
        raw = name if isinstance(name, bytes) else text_of(name)
        key = _FIELD_KEYS.get(raw)
        if key is None:
            key = ngx_text.safe_header_name(raw).lower().replace(b"_", b"-")
            if len(_FIELD_KEYS) < MAX_FIELD_KEYS:
                _FIELD_KEYS[raw] = key
        if isinstance(value, bytes):
            # the usual value needs no escape: one pass in C says so (safe_header_value is interpreted, and its
            # regular expression search cost more than the rest of the edit)
            if len(value.translate(None, UNSAFE_VALUE_BYTES)) != len(value):
                value = ngx_text.safe_header_value(value)
            request.set(key, value)
        else:
            request.set(key, None)


class NgxReq:
    """The ngx.req functions, each over the exchange of the call the engine runs now."""

    def __init__(self, engine: LuaHost) -> None:
        self.engine = engine
        self.wait_marker = engine.wait_marker

    def req_method(self) -> bytes:
        ex = exchange_state(self.engine, "ngx.req.get_method").exchange
        assert ex is not None
        return ex.request.method

    def req_set_method(self, method: bytes) -> None:
        ex = exchange_state(self.engine, "ngx.req.set_method").exchange
        assert ex is not None
        if not ngx_text.is_token(method):  # RFC 9110 §9.1: a method is a token
            raise ScriptError(f"ngx.req.set_method: bad method {method[:40]!r}")
        ex.request.method = method
        ex.request.changed = True

    def req_version(self) -> float:
        ex = exchange_state(self.engine, "ngx.req.http_version").exchange
        assert ex is not None
        return 2.0 if ex.request.version == b"2" else float(ex.request.version)

    def req_query(self) -> bytes:
        ex = exchange_state(self.engine, "ngx.req.get_uri_args").exchange
        assert ex is not None
        return ex.request.query

    def req_set_query(self, query: bytes) -> None:
        ex = exchange_state(self.engine, "ngx.req.set_uri_args").exchange
        assert ex is not None
        ex.request.target = ex.request.path + (b"?" + ngx_text.escape_query(query) if query else b"")
        ex.request.changed = True

    def req_set_path(self, path: bytes) -> None:
        ex = exchange_state(self.engine, "ngx.req.set_uri").exchange
        assert ex is not None
        if not path.startswith(b"/"):
            raise ScriptError("ngx.req.set_uri: the URI must start with '/'")
        query = ex.request.query
        ex.request.target = ngx_text.escape_path(path) + (b"?" + query if query else b"")
        ex.request.changed = True

    def req_headers(self) -> Any:
        ex = exchange_state(self.engine, "ngx.req.get_headers").exchange
        assert ex is not None
        flat: list[bytes] = []
        for name, value in ex.request.headers:
            flat.append(name)
            flat.append(value)
        if ex.request.authority and ex.request.get(b"host") is None:
            flat[:0] = [b"host", ex.request.authority]
        return self.engine.lua.table_from(flat)

    def req_set_header(self, name: bytes, value: Any) -> None:
        state = exchange_state(self.engine, "ngx.req.set_header")
        ex = state.exchange
        assert ex is not None
        if state.phase not in REQUEST_PHASES:
            raise ScriptError(f"ngx.req.set_header is not allowed in {state.phase}")
        key = ngx_text.safe_header_name(name).lower().replace(b"_", b"-")
        values = lua_values(self.engine, value)
        request = ex.request
        if len(values) == 1:
            request.set(key, values[0])  # in place of the first line, as nginx replaces a header
        else:
            request.set(key, None)
            request.headers.extend((key, v) for v in values)
            if key == b"host" and values:
                request.authority = values[0]

    def req_apply(self, *edits: Any) -> None:
        """set_header / clear_header calls the Lua half recorded in a request phase (name, value or False, ...),
        sent before the handler's next call into Python or its yield."""
        ex = exchange_state(self.engine, "ngx.req.set_header").exchange
        assert ex is not None
        apply_edits(ex.request, edits, 0)

    def _body_state(self, what: str) -> CallState:
        state = exchange_state(self.engine, what)
        if state.phase not in BODY_PHASES:
            raise ScriptError(f"{what} is not allowed in {state.phase}")
        return state

    def req_read_body(self) -> Any:
        ex = self._body_state("ngx.req.read_body").exchange
        assert ex is not None
        waiter = Waiter()
        if ex.read_body(waiter.done):
            return None
        self.engine.pending = waiter
        return self.wait_marker

    def req_body(self) -> bytes | None:
        ex = self._body_state("ngx.req.get_body_data").exchange
        assert ex is not None
        return ex.body_data()

    def req_set_body(self, data: bytes) -> None:
        ex = self._body_state("ngx.req.set_body_data").exchange
        assert ex is not None
        try:
            ex.set_body(data)
        except PipelineError as exc:
            raise ScriptError(f"ngx.req.set_body_data: {exc}") from None

    def req_discard_body(self) -> None:
        ex = self._body_state("ngx.req.discard_body").exchange
        assert ex is not None
        ex.discard_body()

    def started(self) -> float:
        ex = exchange_state(self.engine, "ngx.req.start_time").exchange
        assert ex is not None
        return ex.started
