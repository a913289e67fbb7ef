"""The pam_unshare line in a pam.d service file: parse, add, replace, remove. Pure text in, text out.

A pam.d file (pam.d(5)) is a list of rules `type control module-path [arguments]`, `@include NAME` lines,
comments and blank lines. Every line is checked against that grammar before anything is changed, and a
file with a line rsp does not understand (a continuation backslash, an unknown type, a control word that is
not one) is refused rather than edited: a mistake in a PAM file can lock everybody out.

The line rsp manages is `session required pam_python.so /ABS/PATH/pam_unshare.py [key=value...]`; it is
recognised by its type, its module (pam_python.so) and its first argument's file name (pam_unshare.py),
so a reinstall from another checkout replaces it instead of adding a second one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rsp.errors import PamError

PAM_PYTHON_MODULE: Final = "pam_python.so"
MODULE_FILE_NAME: Final = "pam_unshare.py"
# `required`: if libpam-python goes missing or the module fails, the session fails (closed, not open).
CONTROL: Final = "required"

RULE_TYPES: Final = frozenset({"auth", "account", "password", "session"})
CONTROL_KEYWORDS: Final = frozenset({"required", "requisite", "sufficient", "optional", "include", "substack"})


@dataclass(frozen=True)
class Rule:
    """One `type control module [arguments]` line (the type without its optional leading '-')."""

    line_number: int
    type: str
    control: str
    module: str
    arguments: tuple[str, ...]


@dataclass(frozen=True)
class ParsedFile:
    lines: tuple[str, ...]
    rules: tuple[Rule, ...]
    # Indexes (0-based) of `@include` lines, with the included name.
    includes: tuple[tuple[int, str], ...]


def render_line(module_path: str, arguments: Sequence[str] = ()) -> str:
    """The session line for `module_path` (absolute, no spaces: pam.d has no quoting) and its arguments."""
    if not os.path.isabs(module_path):
        raise PamError(f"module path {module_path!r} must be absolute")
    for word in (module_path, *arguments):
        if not word or any(ch.isspace() for ch in word) or "#" in word:
            raise PamError(f"{word!r}: pam.d words cannot be empty or hold spaces or '#'")
    return " ".join(("session", CONTROL, PAM_PYTHON_MODULE, module_path, *arguments))


def parse_pamd(text: str, source: str) -> ParsedFile:
    """Every line checked; PamError names `source`, the line number and what is wrong."""
    lines = tuple(text.splitlines())
    rules: list[Rule] = []
    includes: list[tuple[int, str]] = []
    for index, raw in enumerate(lines):
        number = index + 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            raise PamError(f"{source}:{number}: a continued line; rsp edits only one-line rules, edit by hand")
        words = stripped.split("#", 1)[0].split()
        if words[0] == "@include":
            if len(words) != 2:
                raise PamError(f"{source}:{number}: '@include' takes one file name")
            includes.append((index, words[1]))
            continue
        rules.append(_parse_rule(words, number, source))
    return ParsedFile(lines, tuple(rules), tuple(includes))


def _parse_rule(words: list[str], number: int, source: str) -> Rule:
    kind = words[0].lower().removeprefix("-")
    if kind not in RULE_TYPES:
        raise PamError(f"{source}:{number}: {words[0]!r} is not a PAM rule type ({', '.join(sorted(RULE_TYPES))})")
    rest = words[1:]
    if not rest:
        raise PamError(f"{source}:{number}: a rule without a control")
    if rest[0].startswith("["):
        # `[value=action ...]` may span several words: up to the word that closes it.
        for end, word in enumerate(rest):
            if word.endswith("]"):
                control, rest = " ".join(rest[: end + 1]), rest[end + 1:]
                break
        else:
            raise PamError(f"{source}:{number}: '[' without ']' in the control")
    elif rest[0].lower() in CONTROL_KEYWORDS:
        control, rest = rest[0], rest[1:]
    else:
        raise PamError(f"{source}:{number}: {rest[0]!r} is not a PAM control")
    if not rest:
        raise PamError(f"{source}:{number}: a rule without a module")
    return Rule(number, kind, control, rest[0], tuple(rest[1:]))


def is_our_rule(rule: Rule) -> bool:
    return (rule.type == "session" and os.path.basename(rule.module) == PAM_PYTHON_MODULE
            and bool(rule.arguments) and os.path.basename(rule.arguments[0]) == MODULE_FILE_NAME)


def install_line(text: str, line: str, source: str) -> tuple[str, bool]:
    """`text` with `line` as its one pam_unshare line; (new text, whether it changed). Idempotent.

    An existing pam_unshare line is replaced in place (its position kept); otherwise the line goes after the
    last session rule or `@include ...session...`, so that it runs after the session modules already there
    (pam_systemd, pam_limits), or at the end of a file with none.
    """
    parsed = parse_pamd(text, source)
    ours = [rule for rule in parsed.rules if is_our_rule(rule)]
    if len(ours) > 1:
        numbers = ", ".join(str(rule.line_number) for rule in ours)
        raise PamError(f"{source}: several pam_unshare lines (lines {numbers}); remove all but one by hand")
    lines = list(parsed.lines)
    if ours:
        index = ours[0].line_number - 1
        if lines[index].split() == line.split():
            return text, False
        lines[index] = line
    else:
        lines.insert(_insertion_index(parsed), line)
    return "\n".join(lines) + "\n", True


def remove_line(text: str, source: str) -> tuple[str, int]:
    """`text` without its pam_unshare lines; (new text, how many were removed). Idempotent."""
    parsed = parse_pamd(text, source)
    drop = {rule.line_number - 1 for rule in parsed.rules if is_our_rule(rule)}
    if not drop:
        return text, 0
    kept = [line for index, line in enumerate(parsed.lines) if index not in drop]
    return "\n".join(kept) + "\n" if kept else "", len(drop)


def _insertion_index(parsed: ParsedFile) -> int:
    after = -1
    for rule in parsed.rules:
        if rule.type == "session":
            after = max(after, rule.line_number - 1)
    for index, name in parsed.includes:
        if "session" in name:
            after = max(after, index)
    return after + 1 if after >= 0 else len(parsed.lines)
