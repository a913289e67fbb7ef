"""The prelude's parts (rsp.lua.prelude.PARTS): every file the loader names ships beside prelude.py (in the
source tree and, through pyproject's package-data, in a wheel), each part is read whole and in order, and a
position `<rsp>:LINE` in an error is named back as its part's own line."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

import rsp.lua.prelude as prelude
from rsp.pipeline.messages import LocalReply
from support.lua_exchange import FakeExchange

LUA_DIR = Path(prelude.__file__).parent
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_every_part_the_loader_names_is_beside_prelude_py_and_no_other() -> None:
    assert len(set(prelude.PARTS)) == len(prelude.PARTS)
    for name in prelude.PARTS:
        assert (LUA_DIR / name).is_file(), name
    assert {p.name for p in LUA_DIR.glob("*.lua")} == set(prelude.PARTS)


def test_package_data_ships_every_part() -> None:
    patterns = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["rsp"]
    for name in prelude.PARTS:
        assert any(fnmatch(f"lua/{name}", pattern) for pattern in patterns), name


def test_the_prelude_is_the_parts_joined_in_order() -> None:
    texts = [(LUA_DIR / name).read_text(encoding="utf-8") for name in prelude.PARTS]
    assert all(text.endswith("\n") for text in texts)
    assert "".join(texts) == prelude.PRELUDE
    # the chunk's arguments are taken by the first part, the driver returned by the last
    assert "\nlocal B, opts = ...\n" in texts[0]
    assert texts[-1].rstrip().endswith("return driver")


def test_locate_names_each_part_and_its_own_line() -> None:
    lines = prelude.PRELUDE.split("\n")
    first = 1
    for name in prelude.PARTS:
        count = (LUA_DIR / name).read_text(encoding="utf-8").count("\n")
        assert prelude.locate(first) == f"{name}:1"
        assert prelude.locate(first + count - 1) == f"{name}:{count}"
        assert lines[first - 1] == (LUA_DIR / name).read_text(encoding="utf-8").split("\n")[0]
        first += count
    assert prelude.locate(first) == f"<rsp>:{first}"
    assert prelude.locate(0) == "<rsp>:0"


def test_an_error_inside_the_prelude_is_located_in_its_part(lua) -> None:  # type: ignore[no-untyped-def]
    """ngx.encode_args given no table fails inside the prelude (prelude_text.lua's pairs): the message names
    `<rsp>:LINE`, which `locate` turns into that part's line."""
    flt = lua.filter("""{ access = function()
        local ok, err = pcall(ngx.encode_args, 5)
        ngx.print(tostring(ok), "|", err)
      end }""")
    reply = flt.access(FakeExchange(b"/p"))
    assert isinstance(reply, LocalReply)
    ok, message = reply.body.decode().split("|", 1)
    assert ok == "false" and message.startswith("<rsp>:"), message
    line = int(message.split(":")[1])
    part, part_line = prelude.locate(line).split(":")
    assert part == "prelude_text.lua"
    text = (LUA_DIR / part).read_text(encoding="utf-8").split("\n")[int(part_line) - 1]
    assert "pairs(t)" in text, text
