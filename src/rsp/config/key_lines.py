"""The Lua source line of every entry of a config, by key path, so that an error names the line at fault.

Lua runs table constructors without telling anyone where each field was written (the runtime sees a global
only once its whole statement has run, at the statement's last line). So the source is read a second time,
as text: a small tokenizer finds each global assignment `name = ...` and walks the table constructors in
its value, recording the line of every field under the key path the loader uses in its messages:
`listen[1].port`, `pools.web.backends[2].weight`, `http.trusted_proxies[1]`.

Only literal constructors are walked; a value built by an expression or a function call has the line of
its nearest enclosing entry (`line_of` walks up the key path), which is still the right place to look.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

_TOKEN: Final = re.compile(
    r"""
      (?P<space>[ \t\r\n\f\v]+)
    | (?P<comment>--(?:\[(?P<ceq>=*)\[.*?\](?P=ceq)\]|[^\n]*))
    | (?P<longstring>\[(?P<seq>=*)\[.*?\](?P=seq)\])
    | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    | (?P<number>0[xX][0-9a-fA-F.]+(?:[pP][+-]?\d+)?|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|<<|>>|//|::|[-+*/%^\#&~|<>=(){}\[\];:,.])
    """,
    re.DOTALL | re.VERBOSE,
)
# Lua keywords that open a block closed by `end` (`while` and `for` open theirs with `do`), and `repeat`'s
# `until`: commas inside a function body are not field separators.
_BLOCK_OPENERS: Final = frozenset({"function", "if", "do", "repeat"})
_BLOCK_CLOSERS: Final = frozenset({"end", "until"})
_OPENING: Final = frozenset({"(", "[", "{"})
_CLOSING: Final = frozenset({")", "]", "}"})
_FIELD_ENDS: Final = frozenset({",", ";", "}"})
# Keywords that start a statement: a value never contains one outside a function body.
_STATEMENT_KEYWORDS: Final = frozenset({"if", "for", "while", "local", "return", "repeat", "goto", "break", "do"})
# What may precede `name =` when it is not an assignment to a global.
_NOT_GLOBAL_AFTER: Final = frozenset({".", ":", ",", "local", "for"})
_KEYWORDS: Final = frozenset({
    "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in", "local", "nil",
    "not", "or", "repeat", "return", "then", "true", "until", "while",
})
# The last component of a key path: `.name` or `[n]`.
_LAST_COMPONENT: Final = re.compile(r"(?:\.[^.\[]*|\[\d+\])$")


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # a group name of _TOKEN
    text: str
    line: int


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    line = 1
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:  # a character Lua would reject; the loader reports that itself
            pos += 1
            continue
        kind = match.lastgroup or ""
        text = match.group()
        if kind not in ("space", "comment"):
            out.append(_Token(kind, text, line))
        line += text.count("\n")
        pos = match.end()
    return out


class _Reader:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.lines: dict[str, int] = {}

    def text(self, index: int) -> str:
        return self.tokens[index].text if index < len(self.tokens) else ""

    def record(self, key: str, line: int) -> None:
        self.lines.setdefault(key, line)

    def statements(self) -> None:
        depth = 0
        i = 0
        while i < len(self.tokens):
            token = self.tokens[i]
            if token.text in _OPENING:
                depth += 1
            elif token.text in _CLOSING:
                depth = max(0, depth - 1)
            elif (depth == 0 and token.kind == "name" and token.text not in _KEYWORDS and self.text(i + 1) == "="
                  and (i == 0 or self.text(i - 1) not in _NOT_GLOBAL_AFTER)):
                self.record(token.text, token.line)
                i = self.value(i + 2, token.text)
                continue
            i += 1

    def value(self, i: int, key: str) -> int:
        """Read the value starting at token i (walking a constructor as `key`); return the index after it."""
        if self.text(i) == "{":
            i = self.constructor(i, key)
        return self.skip_expression(i)

    def constructor(self, i: int, key: str) -> int:
        """Walk the constructor whose `{` is token i; return the index after its `}`."""
        i += 1
        position = 0
        while i < len(self.tokens) and self.text(i) != "}":
            token = self.tokens[i]
            field = ""
            if token.text == "[":
                close = self.skip_expression(i + 1, ends=frozenset({"]"}))
                if close == i + 2:
                    field = _bracket_key(key, self.tokens[i + 1])
                i = close + 2  # past `] =`
            elif token.kind == "name" and self.text(i + 1) == "=":
                field = f"{key}.{token.text}"
                i += 2
            else:
                position += 1
                field = f"{key}[{position}]"
            if field:
                self.record(field, token.line)
                i = self.value(i, field)
            else:
                i = self.skip_expression(i)
            if self.text(i) in (",", ";"):
                i += 1
        return i + 1

    def skip_expression(self, i: int, ends: frozenset[str] = _FIELD_ENDS) -> int:
        """The index of the first token from i that is one of `ends` outside brackets and blocks."""
        brackets = blocks = 0
        while i < len(self.tokens):
            token = self.tokens[i]
            if brackets == 0 and blocks == 0 and token.text in ends:
                return i
            if token.kind == "op":
                if token.text in _OPENING:
                    brackets += 1
                elif token.text in _CLOSING:
                    if brackets == 0:
                        return i  # the end of the enclosing constructor or call
                    brackets -= 1
            elif token.kind == "name":
                if brackets == 0 and blocks == 0 and token.text in _STATEMENT_KEYWORDS:
                    return i  # the next statement
                if token.text in _BLOCK_OPENERS:
                    blocks += 1
                elif token.text in _BLOCK_CLOSERS:
                    blocks = max(0, blocks - 1)
                elif brackets == 0 and blocks == 0 and self.text(i + 1) == "=" and ends is _FIELD_ENDS:
                    return i  # the next statement (a value ended without a separator)
            i += 1
        return i


def _bracket_key(key: str, token: _Token) -> str:
    if token.kind == "string":
        return f"{key}.{token.text[1:-1]}"
    if token.kind == "number" and token.text.isdigit():
        return f"{key}[{int(token.text)}]"
    return ""


def key_lines(source: str) -> dict[str, int]:
    """{key path: line} for every global assignment and every field of its literal table constructors (the
    first assignment of a global wins, as for the runtime's own record)."""
    reader = _Reader(_tokens(source))
    reader.statements()
    return reader.lines


def line_of(lines: Mapping[str, int], key: str) -> int | None:
    """The line of `key`, or of its nearest enclosing entry that has one (None when even the global has none)."""
    while key:
        if key in lines:
            return lines[key]
        shorter = _LAST_COMPONENT.sub("", key)
        if shorter == key:
            return None
        key = shorter
    return None
