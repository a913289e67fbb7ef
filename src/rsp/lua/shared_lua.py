"""ngx.shared.DICT's methods, as OpenResty returns them, over rsp.lua.shared_dict's store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from rsp.errors import ScriptError
from rsp.lua.shared_dict import SharedStore

if TYPE_CHECKING:
    from rsp.lua.host import LuaHost
    from rsp.lua.shared_dict import Value


def _key(value: Any) -> bytes:
    if isinstance(value, bytes):
        if not value:
            raise ScriptError("bad argument #1 to a shared dictionary: the key is empty")
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value) if float(value).is_integer() else value).encode("ascii")
    raise ScriptError("bad argument #1 to a shared dictionary: the key must be a string")


def _value(value: Any, engine: LuaHost) -> Value | None:
    if value is None or isinstance(value, bytes | bool | int | float):
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    raise ScriptError(f"bad value type for a shared dictionary: {engine.lupa.lua_type(value) or type(value).__name__}")


# Integral floats within this bound go to Lua as integers (Lua 5.4 prints 1.0 for a float; LuaJIT has one type)
_EXACT: Final = 9007199254740992.0  # 2 ** 53


def _number(value: float | None) -> Any:
    # comparisons and int() rather than is_integer() and abs(): no method calls (compiled, per incr); a NaN
    # fails both comparisons
    if isinstance(value, float) and -_EXACT < value < _EXACT:
        whole = int(value)
        if whole == value:
            return whole
    return value


def _arg(args: tuple[Any, ...], index: int, default: Any = None) -> Any:
    return args[index] if len(args) > index and args[index] is not None else default


def _out(value: Value | None) -> Any:
    return _number(value) if isinstance(value, float) else value


def shared_incr(engine: LuaHost, name: str, key: Any, delta: Any, init: Any, init_ttl: Any) -> tuple[Any, ...]:
    """DICT:incr(key, value, init, init_ttl), as resty.core returns it."""
    store = shared_store(engine, name)
    new = SharedIncr(store, name).incr(key, delta, init, init_ttl)
    if isinstance(new, tuple):
        return new
    # as resty.core: (value, nil, forcible) when called with init, the value alone otherwise
    return (new, None, False) if init is not None else (new,)


class SharedIncr:
    """One dictionary's incr, as the prelude calls it for every `DICT:incr` (bound once per dictionary: no
    dictionary name crosses from Lua, is decoded or looked up per call)."""

    __slots__ = ("name", "prefix", "store")

    def __init__(self, store: SharedStore, name: str) -> None:
        self.store = store
        self.name = name
        self.prefix = store.prefixes[name]  # the dictionary's LMDB key prefix, looked up once

    def incr(self, key: Any, delta: Any, init: Any = None, init_ttl: Any = None) -> Any:
        """The new value alone when it was written without eviction (the prelude adds resty.core's `nil,
        false` after it when called with init), else a tuple: (nil, error) or (value, nil, true). The prelude
        passes only the arguments the handler gave: each one crossing from Lua costs a conversion and a
        tuple copy in lupa."""
        # (a tuple, not `int | float`: that union is a new object at every call)
        if not isinstance(delta, (int, float)) or isinstance(delta, bool):
            return (None, b"not a number")
        return self.run(key, float(delta), None if init is None else float(init),
                        0.0 if init_ttl is None else float(init_ttl))

    def run(self, key: Any, delta: float, init: float | None, init_ttl: float) -> Any:
        raw = key if isinstance(key, bytes) and key else _key(key)
        new, err, forcible = self.store.incr_at(self.name, self.prefix + raw, raw, delta, init, init_ttl)
        if new is None:
            return (None, err.encode())
        return (_number(new), None, True) if forcible else _number(new)


class BoundIncr:
    """A dictionary's incr with its numbers fixed (value, init, init_ttl), called with the key alone: a handler's
    counter repeats its numbers, and the prelude binds each repeated set once (at most MAX_BOUND per
    dictionary, rsp/lua/prelude_shared.lua), so that one argument crosses from Lua instead of up to four."""

    __slots__ = ("delta", "init", "init_ttl", "shared")

    def __init__(self, shared: SharedIncr, delta: float, init: float | None, init_ttl: float) -> None:
        self.shared = shared
        self.delta = delta
        self.init = init
        self.init_ttl = init_ttl

    def incr(self, key: Any) -> Any:
        """As SharedIncr.incr."""
        return self.shared.run(key, self.delta, self.init, self.init_ttl)


def shared_store(engine: LuaHost, name: str) -> SharedStore:
    """The machine's store when it holds dictionary `name` (ScriptError otherwise)."""
    store: SharedStore | None = engine.shared  # typed: the store's methods are native calls (compiled)
    if store is None or not store.has(name):
        raise ScriptError(f"no shared dictionary '{name}' (declare it in lua.shared)")
    return store


def shared_call(engine: LuaHost, op: str, name: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    store = shared_store(engine, name)
    if op == "incr":
        return shared_incr(engine, name, _arg(args, 0), _arg(args, 1), _arg(args, 2), _arg(args, 3))
    if op in ("get", "get_stale"):
        value, flags, stale = store.get(name, _key(_arg(args, 0)), stale=op == "get_stale")
        if value is None:
            return (None,)
        if op == "get_stale":
            return (_out(value), flags or None, stale)
        # OpenResty leaves flags out when they are 0
        return (_out(value), flags) if flags else (_out(value),)
    if op in ("set", "safe_set", "add", "safe_add", "replace"):
        mode = {"set": "set", "safe_set": "set", "add": "add", "safe_add": "add", "replace": "replace"}[op]
        ok, err, forcible = store.store(name, _key(_arg(args, 0)), _value(_arg(args, 1), engine),
                                        float(_arg(args, 2, 0)), int(_arg(args, 3, 0)), mode=mode,
                                        safe=op.startswith("safe_"))
        if op.startswith("safe_"):
            return (True,) if ok else (None, err.encode())
        return (ok, err.encode() if err else None, forcible)
    if op == "delete":
        store.store(name, _key(_arg(args, 0)), None)
        return ()
    if op == "ttl":
        left = store.ttl(name, _key(_arg(args, 0)))
        return (None, b"not found") if left is None else (_number(round(left, 3)),)
    if op == "expire":
        return (True,) if store.expire(name, _key(_arg(args, 0)), float(_arg(args, 1, 0))) else \
            (None, b"not found")
    if op == "flush_all":
        store.flush_all(name)
        return ()
    if op == "flush_expired":
        return (store.flush_expired(name, int(_arg(args, 0, 0))),)
    if op == "get_keys":
        return (engine.lua.table_from(store.keys(name, int(_arg(args, 0, 1024)))),)
    if op == "capacity":
        return (store.bounds[name],)
    if op == "free_space":
        return (max(0, store.bounds[name] - store.used(name)),)
    raise ScriptError(f"unknown shared dictionary method {op}")
