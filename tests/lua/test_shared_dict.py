"""ngx.shared in LMDB: the store's semantics with an injected clock, exact sums from two processes, the size
bound, and the ngx.shared.DICT API over it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import lmdb
import pytest

from rsp.lua.shared_dict import SharedDictError, SharedStore, default_store_dir, prepare_store
from rsp.pipeline.messages import LocalReply
from support.lua_exchange import FakeExchange

INCREMENTS = 2000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(tmp_path: Path, size: int = 1024 * 1024, clock: Clock | None = None) -> SharedStore:
    prepare_store(str(tmp_path / "s"), {"d": size}, fresh=True)
    return SharedStore(str(tmp_path / "s"), {"d": size}, clock=clock or Clock())


def test_set_get_add_replace_delete(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.store("d", b"k", b"v", 0, 7) == (True, "", False)
    assert store.get("d", b"k") == (b"v", 7, False)
    assert store.store("d", b"k", b"w", mode="add") == (False, "exists", False)
    assert store.store("d", b"nope", b"w", mode="replace") == (False, "not found", False)
    assert store.store("d", b"k", 1.5, mode="replace")[0]
    assert store.get("d", b"k")[0] == 1.5
    store.store("d", b"b", True)
    assert store.get("d", b"b")[0] is True
    store.store("d", b"k", None)
    assert store.get("d", b"k") == (None, 0, False)
    store.close()


def test_ttl_expire_and_stale(tmp_path: Path) -> None:
    clock = Clock()
    store = make(tmp_path, clock=clock)
    store.store("d", b"k", b"v", 10)
    assert store.ttl("d", b"k") == 10
    clock.now += 4
    assert store.ttl("d", b"k") == 6
    assert store.expire("d", b"k", 1)
    clock.now += 2
    assert store.get("d", b"k")[0] is None
    assert store.get("d", b"k", stale=True) == (b"v", 0, True)
    assert store.ttl("d", b"k") is None
    assert not store.expire("d", b"k", 5)
    store.store("d", b"forever", b"x")
    assert store.ttl("d", b"forever") == 0
    assert store.keys("d") == [b"forever"]
    assert store.flush_expired("d") == 1
    store.flush_all("d")
    assert store.keys("d") == []
    store.close()


def test_incr_with_init_and_init_ttl(tmp_path: Path) -> None:
    clock = Clock()
    store = make(tmp_path, clock=clock)
    assert store.incr("d", b"n", 1) == (None, "not found", False)
    assert store.incr("d", b"n", 1, 10, 5) == (11.0, "", False)
    assert store.incr("d", b"n", -2) == (9.0, "", False)
    assert store.ttl("d", b"n") == 5  # the init_ttl stays with later increments
    clock.now += 6
    assert store.incr("d", b"n", 1, 0) == (1.0, "", False)
    store.store("d", b"s", b"text")
    assert store.incr("d", b"s", 1) == (None, "not a number", False)
    store.close()


def test_incr_keeps_flags_and_expiry_and_fails_cleanly(tmp_path: Path) -> None:
    clock = Clock()
    store = make(tmp_path, clock=clock)
    store.store("d", b"n", 2.0, 10, 7)  # a number with flags and an expiry
    used = store.used("d")
    assert store.incr("d", b"n", 0.5) == (2.5, "", False)
    assert store.get("d", b"n") == (2.5, 7, False)
    assert store.ttl("d", b"n") == 10
    assert store.used("d") == used
    clock.now += 11
    assert store.incr("d", b"n", 1) == (None, "not found", False)  # expired, no init
    assert store.incr("d", b"n", 1, 5) == (6.0, "", False)  # expired, init: flags and expiry start afresh
    assert store.get("d", b"n") == (6.0, 0, False)
    with pytest.raises(lmdb.Error):
        store.incr("d", b"k" * 600, 1, 0)  # longer than LMDB's key limit: the transaction is aborted
    assert store.incr("d", b"n", 1) == (7.0, "", False)  # and the store still takes writes
    store.close()


def test_size_bound_is_kept(tmp_path: Path) -> None:
    store = make(tmp_path, size=8 * 1024)
    for i in range(200):
        ok, _, _ = store.store("d", b"key%d" % i, b"x" * 100)
        assert ok
    assert store.used("d") <= 8 * 1024
    assert len(store.keys("d", 0)) < 200  # older entries made room
    assert store.store("d", b"k", b"x" * 100, safe=True) == (False, "no memory", False)
    assert store.store("d", b"huge", b"x" * 9000) == (False, "no memory", False)
    store.close()


def _incr_many(path: str, count: int) -> None:
    store = SharedStore(path, {"d": 1024 * 1024})
    for _ in range(count):
        store.incr("d", b"hits", 1, 0)
    store.close()


def test_two_processes_increment_to_an_exact_sum(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    prepare_store(path, {"d": 1024 * 1024}, fresh=True)
    ctx = multiprocessing.get_context("spawn")  # each process opens its own environment, as workers do
    procs = [ctx.Process(target=_incr_many, args=(path, INCREMENTS)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    store = SharedStore(path, {"d": 1024 * 1024})
    assert store.get("d", b"hits")[0] == 2 * INCREMENTS
    store.close()


def test_dictionaries_share_one_keyspace_apart(tmp_path: Path) -> None:
    """Every dictionary lives in LMDB's main database under its own prefix: the same key in two dictionaries
    (one name the start of the other's) is two entries, and listing, flushing, evicting and counting bytes in
    one never touch the other."""
    path = str(tmp_path / "s")
    dicts = {"a": 8 * 1024, "ab": 1024 * 1024}
    prepare_store(path, dicts, fresh=True)
    store = SharedStore(path, dicts, clock=Clock())
    store.store("a", b"k", b"one")
    store.store("ab", b"k", b"two", 5)
    assert store.incr("a", b"n", 1, 0) == (1.0, "", False)
    assert store.incr("ab", b"n", 5, 0) == (5.0, "", False)
    assert (store.get("a", b"k")[0], store.get("ab", b"k")[0]) == (b"one", b"two")
    assert sorted(store.keys("a")) == sorted(store.keys("ab")) == [b"k", b"n"]
    ab_used = store.used("ab")
    for i in range(200):  # fills "a" past its bound: it evicts its own entries only
        store.store("a", b"key%d" % i, b"x" * 100)
    assert store.used("a") <= 8 * 1024
    assert store.get("a", b"k")[0] is None
    assert store.get("ab", b"k")[0] == b"two" and store.used("ab") == ab_used
    store.clock.now += 10  # type: ignore[attr-defined]
    assert store.flush_expired("ab") == 1
    assert store.keys("ab") == [b"n"] and store.used("ab") == ab_used - (1 + 13 + 3 + 64)
    store.flush_all("a")
    assert store.keys("a") == [] and store.used("a") == 0
    assert store.get("ab", b"n")[0] == 5.0
    with pytest.raises(SharedDictError):
        prepare_store(path, {"x" * 256: 8 * 1024}, fresh=False)
    store.close()


def test_prepare_fresh_empties_and_reload_keeps(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.store("d", b"k", b"v")
    store.close()
    prepare_store(str(tmp_path / "s"), {"d": 1024 * 1024}, fresh=False)
    kept = SharedStore(str(tmp_path / "s"), {"d": 1024 * 1024})
    assert kept.get("d", b"k")[0] == b"v"
    kept.close()
    prepare_store(str(tmp_path / "s"), {"d": 1024 * 1024}, fresh=True)
    fresh = SharedStore(str(tmp_path / "s"), {"d": 1024 * 1024})
    assert fresh.get("d", b"k")[0] is None
    fresh.close()


def test_default_dir_is_per_config(tmp_path: Path) -> None:
    assert default_store_dir("/a/rsp.lua", str(tmp_path)) != default_store_dir("/b/rsp.lua", str(tmp_path))
    assert default_store_dir("/a/rsp.lua", str(tmp_path)).startswith(str(tmp_path))


def test_ngx_shared_api(lua) -> None:  # type: ignore[no-untyped-def]
    flt = lua.filter("""{ shared = { cache = "1m" }, access = function()
        local d = ngx.shared.cache
        local out = {}
        local function add(...) local t = {...} for i = 1, select('#', ...) do out[#out + 1] = tostring(t[i]) end end
        add(d:set("a", "x", 0, 3))
        add(d:get("a"))
        add(d:add("a", "y"))
        add(d:safe_add("b", 1))
        add(d:replace("a", "z"))
        add(d:incr("n", 5, 10))
        add(d:incr("n", 1))
        add(d:incr("missing", 1))
        add(d:ttl("a"))
        add(d:expire("a", 30))
        add(math.floor(d:ttl("a") + 0.5))
        d:delete("b")
        add(d:get("b"))
        local keys = d:get_keys()
        table.sort(keys)
        add(table.concat(keys, ","))
        add(d:capacity())
        d:flush_all()
        add(d:get("a"))
        add(ngx.shared.nope)
        ngx.print(table.concat(out, " "))
    end }""")
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply)
    assert reply.body == (b"true nil false x 3 false exists false true true nil false 15 nil false 16 "
                          b"nil not found 0 true 30 nil a,n 1048576 nil nil")


def test_ngx_shared_incr_results_as_resty_core(lua) -> None:  # type: ignore[no-untyped-def]
    """DICT:incr's every shape through the prelude, which passes Python only the arguments given and turns the
    bound incr's short answers back into resty.core's: the value alone, (value, nil, forcible), (nil, err)."""
    flt = lua.filter("""{ shared = { small = "8k", other = "1m" }, access = function()
        local d, o = ngx.shared.small, ngx.shared.other
        local out = {}
        local function add(...) local t = {...} out[#out + 1] = select('#', ...) .. ":"
          for i = 1, select('#', ...) do out[#out] = out[#out] .. tostring(t[i]) .. "," end end
        add(d:incr("n", 1))                 -- missing, no init
        add(d:incr("n", 1, nil, 30))        -- init_ttl without init: still not found
        add(d:incr("n", 2, 40, 30))         -- init and init_ttl
        add(math.floor(d:ttl("n") + 0.5))
        add(d:incr("n", 0.5))               -- the value alone
        add(d:incr("n", -2.5, 0))           -- with init on a live entry: (value, nil, false)
        add(d:incr(7, 1, 0))                -- a number key is its decimal text
        add(d:get("7"))
        add(d:incr("n", "x"))
        d:set("s", "text")
        add(d:incr("s", 1, 0))
        add(d.incr(o, "n", 5, 1))           -- another dictionary's table as self: that dictionary's incr
        add(o:get("n"), d:get("n"))
        -- fill the dictionary to 10 bytes short of its bound (a string entry costs its key, 13 bytes of head,
        -- its value and 64 of overhead): the new number must evict ("7", first in key order)
        d:set("fill", string.rep("x", d:free_space() - 4 - 13 - 64 - 10))
        add(d:free_space())
        local n, err, forcible = d:incr("new", 1, 100)
        add(n, err, forcible, d:get("7"))
        add(pcall(d.incr, {name = "nope"}, "k", 1))
        local last  -- more sets of numbers than the prelude binds per dictionary (MAX_BOUND = 8): each still adds
        for i = 1, 12 do last = o:incr("loop", i, 0) + o:incr("loop", 0.5) end
        add(last, o:get("loop"))
        ngx.print(table.concat(out, "|"))
    end }""")
    reply = flt.access(FakeExchange())
    assert isinstance(reply, LocalReply)
    assert reply.body.split(b"|") == [
        b"2:nil,not found,", b"2:nil,not found,", b"3:42,nil,false,", b"1:30,", b"1:42.5,", b"3:40,nil,false,",
        b"3:1,nil,false,", b"1:1,", b"2:nil,not a number,", b"2:nil,not a number,", b"3:6,nil,false,", b"2:6,40,",
        b"1:10,", b"4:101,nil,true,nil,",
        b"2:false,<lua1>:27: no shared dictionary 'nope' (declare it in lua.shared),", b"2:167.5,84,"]
