"""Loaders for the three HTTP/1.1 conformance corpora vendored in tests/conformance/corpora/ (see its README.md).

Every loader first checks the vendored files against `corpora/SHA256SUMS` (`verify_corpora()`): a file
missing, truncated or changed, or a fixture file the manifest does not list, raises CorpusError naming it,
so a run without the corpora fails instead of passing on fewer cases.

- aws/http-desync-guardian YAML: `load_desync_guardian()` -> DesyncCase (a request built from the
  structured case, plus its expected tier: Compliant, Acceptable, Ambiguous, Severe).
- nodejs/llhttp markdown fixtures: `load_llhttp("request" | "response")` -> LlhttpCase (the raw message
  normalised exactly as llhttp's test/md-test.ts does, and what llhttp's log says happened).
- http-garden TROPHIES.md: `load_trophies()` -> Trophy (each bug's example payload, unescaped).

Choices made when turning the corpora into bytes, each needed because the corpus leaves it open:
- desync-guardian cases are structured (method, uri, version, header list) and carry neither Host nor a
  body. The request line is `method SP uri SP version` (no " version" when it is empty, HTTP/0.9 style);
  fields are `name: value` with the YAML strings encoded as UTF-8 (what the Rust original does with its
  `String`s); `Host: example.com` is added first when no Host is present; the body is `0\\r\\n\\r\\n` when
  a Transfer-Encoding value mentions chunked, else N bytes when Content-Length is a plain number
  (up to MAX_GENERATED_BODY).
- llhttp fixtures: normalisation as md-test.ts (drop the final newline, join backslash-newline,
  newlines to CRLF, unescape \\r \\n \\t \\f \\xHH.. \\NNN, then UTF-8, as the span lengths in the logs
  show). Many lack Host: `with_host()` inserts one after each HTTP/1.1 request line it can find, so that
  refusals come from the property a fixture tests and not from the missing Host.
- TROPHIES.md payloads: every `...` span of a "Payload:" line, concatenated, Python-unescaped; prose
  payloads ("Any request at all.") have no bytes (payload None).
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CORPUS_DIR = Path(__file__).resolve().parent / "corpora"
DESYNC_DIR = CORPUS_DIR / "http-desync-guardian"
LLHTTP_DIR = CORPUS_DIR / "llhttp"
TROPHIES = CORPUS_DIR / "http-garden" / "TROPHIES.md"
# `sha256sum` format: "<hex digest>  <path relative to CORPUS_DIR>", one line per vendored fixture file.
MANIFEST = CORPUS_DIR / "SHA256SUMS"
# The fixture files the loaders read (everything else in CORPUS_DIR is documentation and licences).
FIXTURE_PATTERNS = (
    "http-desync-guardian/*.yaml",
    "llhttp/request/*.md",
    "llhttp/response/*.md",
    "http-garden/TROPHIES.md",
)

# Bodies longer than this are not generated (the "64-bits overflow" case asks for 2**64 bytes).
MAX_GENERATED_BODY = 8 * 1024 * 1024

# Every tier desync-guardian uses, best first.
TIERS = ("Compliant", "Acceptable", "Ambiguous", "Severe")


class CorpusError(Exception):
    """The vendored corpora are not as the manifest lists them."""


def manifest_problems(corpus_dir: Path) -> list[str]:
    """What differs between `corpus_dir` and its SHA256SUMS: missing, changed and unlisted fixture files."""
    manifest = corpus_dir / MANIFEST.name
    if not manifest.is_file():
        return [f"{manifest.name} is missing"]
    problems: list[str] = []
    listed: set[str] = set()
    for line in manifest.read_text(encoding="utf-8").splitlines():
        digest, _, name = line.partition("  ")
        listed.add(name)
        path = corpus_dir / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name} differs from the copy recorded in {manifest.name} (truncated or edited?)")
    for pattern in FIXTURE_PATTERNS:
        for path in sorted(corpus_dir.glob(pattern)):
            name = path.relative_to(corpus_dir).as_posix()
            if name not in listed:
                problems.append(f"{name} is not listed in {manifest.name}")
    return problems


def check_corpora(corpus_dir: Path) -> None:
    """Raise CorpusError unless every fixture file of `corpus_dir` is present and as its manifest records."""
    problems = manifest_problems(corpus_dir)
    if problems:
        raise CorpusError(
            f"the conformance corpora in {corpus_dir} are incomplete: " + "; ".join(problems)
            + ". Restore them from git (git checkout -- tests/conformance/corpora) or refresh them as"
            " tests/conformance/corpora/README.md describes."
        )


@functools.cache
def verify_corpora() -> None:
    """check_corpora() on the vendored copy, once per process (every loader calls it first)."""
    check_corpora(CORPUS_DIR)


# -- http-desync-guardian -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesyncCase:
    file: str
    name: str
    tier: str  # one of TIERS
    reason: str
    method: str
    uri: str
    version: str
    headers: tuple[tuple[str, str], ...]
    raw: bytes

    @property
    def ident(self) -> str:
        return f"{self.file}: {self.name}"


def _text(value: object) -> str:
    return "" if value is None else str(value)


def build_desync_request(method: str, uri: str, version: str, headers: list[tuple[str, str]]) -> bytes:
    line = f"{method} {uri} {version}" if version else f"{method} {uri}"
    fields = list(headers)
    if not any(name.lower() == "host" for name, _ in fields):
        fields.insert(0, ("Host", "example.com"))
    head = line + "\r\n" + "".join(f"{name}: {value}\r\n" for name, value in fields) + "\r\n"
    body = b""
    codings = [value for name, value in fields if name.lower() == "transfer-encoding"]
    lengths = [value for name, value in fields if name.lower() == "content-length"]
    if any("chunked" in value.lower() for value in codings):
        body = b"0\r\n\r\n"
    elif lengths and lengths[0].strip().isdigit() and lengths[0].strip().isascii():
        length = int(lengths[0].strip())
        body = b"x" * length if length <= MAX_GENERATED_BODY else b""
    return head.encode("utf-8") + body


def load_desync_guardian() -> list[DesyncCase]:
    """Every case, once: single-case.yaml repeats a case of ambiguous.yaml (it is the upstream's
    debugging slot), so identical cases are kept once, which gives the 158 the corpus README counts."""
    verify_corpora()
    cases: list[DesyncCase] = []
    seen: set[tuple[object, ...]] = set()
    for path in sorted(DESYNC_DIR.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            headers = [(_text(h["name"]), _text(h["value"])) for h in entry.get("headers") or []]
            method, uri, version = _text(entry["method"]), _text(entry["uri"]), _text(entry["version"])
            expected = entry["expected"]
            key = (_text(entry["name"]), method, uri, version, tuple(headers), _text(expected["tier"]))
            if key in seen:
                continue
            seen.add(key)
            cases.append(
                DesyncCase(
                    file=path.name,
                    name=_text(entry["name"]),
                    tier=_text(expected["tier"]),
                    reason=_text(expected.get("reason")),
                    method=method,
                    uri=uri,
                    version=version,
                    headers=tuple(headers),
                    raw=build_desync_request(method, uri, version, headers),
                )
            )
    return cases


# -- llhttp ---------------------------------------------------------------------------------------------

# llhttp error codes that are pauses, not errors (llhttp.h: HPE_PAUSED, HPE_PAUSED_UPGRADE,
# HPE_PAUSED_H2_UPGRADE).
PAUSE_CODES = frozenset((21, 22, 23))


@dataclass
class LlhttpMessage:
    """What llhttp's log says about one message."""

    method: str = ""
    url: str = ""
    status: int = 0
    body: str = ""
    complete: bool = False


@dataclass(frozen=True)
class LlhttpCase:
    file: str  # e.g. "request/content-length.md"
    title: str  # the headings above the fixture, " / "-joined
    meta: dict[str, object]
    raw: bytes
    log: tuple[str, ...]
    messages: tuple[LlhttpMessage, ...] = field(compare=False)
    error_code: int | None  # the first non-pause error llhttp reports, if any
    error_reason: str
    paused: bool  # llhttp stopped on CONNECT / Upgrade / PRI (codes 22, 23)
    finish: int | None  # `finish=N` of the *-finish fixtures (0, 1: clean EOF; 2: EOF mid-message)

    @property
    def ident(self) -> str:
        return f"{self.file}: {self.title}"

    @property
    def kind(self) -> str:
        return str(self.meta.get("type", ""))

    @property
    def lenient(self) -> bool:
        return "-lenient-" in self.kind

    @property
    def completed(self) -> int:
        return sum(1 for message in self.messages if message.complete)


def normalise_llhttp(text: str) -> bytes:
    """The input transformation of llhttp's test/md-test.ts, in the same order."""
    if text.endswith("\n"):
        text = text[:-1]
    text = re.sub(r"\\(\r\n|\r|\n)", "", text)
    text = re.sub(r"\r\n|\r|\n", "\r\n", text)
    text = text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t").replace("\\f", "\f")
    text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m.group(1), 16)), text)
    text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), text)
    return text.encode("utf-8")


def _unescape_span(text: str) -> str:
    """Spans in the logs print CR, LF, TAB, FF and other control bytes escaped."""
    text = text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t").replace("\\f", "\f")
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), text)


# A span is printed quoted, or as the bare words cr / lf when it is a single CR or LF.
_SPAN_RE = re.compile(r'^off=\d+ len=\d+ span\[(\w+)\]=(?:"(.*)"|(cr|lf))$')
_ERROR_RE = re.compile(r'^off=\d+ error code=(\d+) reason="(.*)"$')
_FINISH_RE = re.compile(r"^off=NULL finish=(\d+)$")
_STATUS_RE = re.compile(r"headers complete status=(\d+)")


def _read_log(lines: list[str]) -> tuple[list[LlhttpMessage], int | None, str, bool, int | None]:
    messages: list[LlhttpMessage] = []
    error_code: int | None = None
    reason = ""
    paused = False
    finish: int | None = None
    for line in lines:
        if line.endswith(" message begin"):
            messages.append(LlhttpMessage())
            continue
        current = messages[-1] if messages else None
        span = _SPAN_RE.match(line)
        if span is not None and current is not None:
            kind = span.group(1)
            bare = span.group(3)
            value = {"cr": "\r", "lf": "\n"}[bare] if bare else _unescape_span(span.group(2))
            if kind == "method":
                current.method += value
            elif kind == "url":
                current.url += value
            elif kind == "body":
                current.body += value
            continue
        status = _STATUS_RE.search(line)
        if status is not None and current is not None:
            current.status = int(status.group(1))
            continue
        if line.endswith(" message complete") and current is not None:
            current.complete = True
            continue
        error = _ERROR_RE.match(line)
        if error is not None:
            code = int(error.group(1))
            if code in PAUSE_CODES:
                paused = True
            elif error_code is None:
                error_code, reason = code, error.group(2)
            break
        fin = _FINISH_RE.match(line)
        if fin is not None:
            finish = int(fin.group(1))
    return messages, error_code, reason, paused, finish


def _parse_llhttp_file(path: Path, relative: str) -> list[LlhttpCase]:
    lines = path.read_text(encoding="utf-8").split("\n")
    cases: list[LlhttpCase] = []
    headings: dict[int, str] = {}
    meta: dict[str, object] | None = None
    raw: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            headings = {k: v for k, v in headings.items() if k < level}
            headings[level] = line.lstrip("#").strip()
        elif line.startswith("<!-- meta="):
            meta = json.loads(line[len("<!-- meta=") : line.rindex("-->")])
        elif line.startswith("```http") or line.startswith("```log"):
            is_log = line.startswith("```log")
            index += 1
            block: list[str] = []
            while index < len(lines) and lines[index] != "```":
                block.append(lines[index])
                index += 1
            if not is_log:
                raw = "".join(item + "\n" for item in block)
            elif meta is not None and raw is not None:
                messages, code, reason, paused, finish = _read_log(block)
                cases.append(
                    LlhttpCase(
                        file=relative,
                        title=" / ".join(headings[k] for k in sorted(headings) if k > 1),
                        meta=meta,
                        raw=normalise_llhttp(raw),
                        log=tuple(block),
                        messages=tuple(messages),
                        error_code=code,
                        error_reason=reason,
                        paused=paused,
                        finish=finish,
                    )
                )
                meta = raw = None
        index += 1
    return cases


def load_llhttp(kind: str) -> list[LlhttpCase]:
    """Every fixture of llhttp/test/<kind> ("request" or "response"), in file order."""
    verify_corpora()
    cases: list[LlhttpCase] = []
    for path in sorted((LLHTTP_DIR / kind).glob("*.md")):
        cases.extend(_parse_llhttp_file(path, f"{kind}/{path.name}"))
    return cases


_REQUEST_LINE_11 = re.compile(rb"(?m)^[A-Z][A-Z\-_]* [^ \r\n]+ HTTP/1\.1\r\n")


def with_host(raw: bytes) -> bytes:
    """Insert `Host: example.com` after each HTTP/1.1 request line when the message has no Host at all."""
    if re.search(rb"(?im)^host[ \t]*:", raw):
        return raw
    return _REQUEST_LINE_11.sub(lambda m: m.group(0) + b"Host: example.com\r\n", raw)


# -- http-garden TROPHIES.md ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trophy:
    section: str  # "Server Bugs", "Transducer Bugs", "Bonus bugs", "Bonus Bonus Bugs"
    number: int
    title: str
    payload: bytes | None

    @property
    def ident(self) -> str:
        return f"{self.section} #{self.number}: {self.title}"


_ITEM_RE = re.compile(r"^(\d+)\. (.*)$")
_PAYLOAD_RE = re.compile(r"^\s*- Payload: (.*)$")


def load_trophies() -> list[Trophy]:
    verify_corpora()
    trophies: list[Trophy] = []
    section = ""
    number = 0
    title = ""
    for line in TROPHIES.read_text(encoding="utf-8").split("\n"):
        if line.startswith("##"):
            section = line.lstrip("#").strip()
            continue
        item = _ITEM_RE.match(line)
        if item is not None:
            number, title = int(item.group(1)), item.group(2)
            continue
        payload = _PAYLOAD_RE.match(line)
        if payload is None or not number:
            continue
        spans = re.findall(r"`([^`]*)`", payload.group(1))
        data: bytes | None = None
        if spans:
            data = b"".join(codecs.escape_decode(span.encode("latin-1"))[0] for span in spans)
        trophies.append(Trophy(section, number, title, data))
    return trophies
