"""A listener's non-default certificates get their OpenSSL context on the first handshake naming them
(rsp.tls.server_context.TlsServer.select), after start-up validated every one without building it
(plan_tls_server, rsp.tls.key_pair): the right certificate is served, a bad one still stops start-up and the
check naming file, line and key, and one whose file went after start-up falls back to the default."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rsp.config.lua_loader import parse_config
from rsp.errors import ConfigError
from rsp.preflight import check_startable
from rsp.tls.server_context import build_tls_server, plan_tls_server
from support.http_backends import HttpBackend
from support.rsp_process import RspProcess, free_port

from .conftest import CertSet, client_context, copied, pair, three_certs, tls_get


def test_only_the_default_context_is_built_at_start(certs: CertSet) -> None:
    config = parse_config(three_certs(pair(certs.a), pair(certs.b), pair(certs.fallback)), "site.lua")
    server = build_tls_server(config, config.tls.listeners["listen[1]"])
    entries = {name: server.names.lookup(name) for name in ("a.example", "x.b.example", "default.example")}
    assert all(entry is not None for entry in entries.values())
    built = {name: entry.context is not None for name, entry in entries.items() if entry is not None}
    assert built == {"a.example": False, "x.b.example": False, "default.example": True}
    first = server.select("x.b.example")
    assert first is not server.default and server.select("b.example") is first  # one context per certificate


def test_a_file_gone_after_start_falls_back_to_the_default(certs: CertSet, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    a = copied(certs.a, tmp_path)
    config = parse_config(three_certs(a, pair(certs.b), pair(certs.fallback)), "site.lua")
    server = build_tls_server(config, config.tls.listeners["listen[1]"])
    a[1].unlink()
    with caplog.at_level(logging.ERROR):
        assert server.select("a.example") is server.default
        assert server.select("a.example") is server.default  # remembered: logged once, not per handshake
    failures = [r.getMessage() for r in caplog.records if "serving the default certificate" in r.getMessage()]
    assert len(failures) == 1 and "listen[1].tls.certificates[1]" in failures[0] and str(a[1]) in failures[0]
    assert server.select("b.example") is not server.default  # the others are unaffected


def test_a_bad_certificate_among_several_fails_the_check_and_start(certs: CertSet) -> None:
    """The second certificate's key is another's: found without building a context, named by line and key."""
    source = three_certs(pair(certs.a), (certs.b.cert_path, certs.a.key_path), pair(certs.fallback),
                         port=free_port())
    config = parse_config(source, "site.lua")
    for attempt in (lambda: check_startable(config),
                    lambda: build_tls_server(config, config.tls.listeners["listen[1]"])):
        with pytest.raises(ConfigError) as info:
            attempt()
        err = info.value
        assert err.key == "listen[1].tls.certificates[2].key" and err.path == "site.lua" and err.line == 5
        assert "does not match" in err.message and str(certs.a.key_path) in err.message


def test_a_key_file_without_a_private_key_is_named(certs: CertSet) -> None:
    source = three_certs(pair(certs.a), (certs.b.cert_path, certs.fallback.cert_path), pair(certs.fallback))
    config = parse_config(source, "site.lua")
    with pytest.raises(ConfigError) as info:
        check_startable(config)
    assert info.value.key == "listen[1].tls.certificates[2].cert" and info.value.line == 5
    assert "no PEM private key" in info.value.message


def test_a_leaf_key_openssl_refuses_fails_the_check_unless_allowed(certs: CertSet) -> None:
    """RSA 1024: OpenSSL's security level 2 refuses it at load (EE_KEY_TOO_SMALL); the check finds it without
    loading it, and allow_weak_chain lets it through as before."""
    weak = certs.ca.issue("weak-leaf", ["weak.example"], kind="rsa1024")
    source = three_certs(pair(weak), pair(certs.b), pair(certs.fallback))
    config = parse_config(source, "site.lua")
    with pytest.raises(ConfigError) as info:
        build_tls_server(config, config.tls.listeners["listen[1]"])
    assert info.value.key == "listen[1].tls.certificates[1].cert" and "EE_KEY_TOO_SMALL" in info.value.message
    allowed = parse_config(source.replace('default = "default.example"',
                                          'default = "default.example", allow_weak_chain = true'), "site.lua")
    server = build_tls_server(allowed, allowed.tls.listeners["listen[1]"])
    assert server.select("weak.example") is not server.default  # built at security level 1 on first use


def test_each_name_gets_its_certificate_and_a_gone_file_the_default_over_tls(
        run_rsp: Callable[..., RspProcess], start_backend: Callable[..., Any], certs: CertSet,
        tmp_path: Path) -> None:
    backend = start_backend(HttpBackend)
    a = copied(certs.a, tmp_path)
    b = copied(certs.b, tmp_path)
    rsp = run_rsp(three_certs(a, b, pair(certs.fallback), port=free_port(), backend_port=backend.port))
    assert tls_get(rsp.port, certs.ca.path, "x.b.example").served_name == "*.b.example"
    a[1].unlink()  # after start-up, before any handshake names a.example: its context cannot be built
    lenient = client_context(certs.ca.path)
    lenient.check_hostname = False  # the default certificate does not name a.example
    for _ in range(2):
        reply = tls_get(rsp.port, certs.ca.path, "a.example", context=lenient)
        assert reply.served_name == "default.example" and reply.response.startswith(b"HTTP/1.1 200 ")
    assert rsp.wait_for_stderr("serving the default certificate for a.example", timeout=5.0) is not None
    b[1].unlink()  # already built: the context holds the key, nothing is read again
    reply = tls_get(rsp.port, certs.ca.path, "b.example")
    assert reply.served_name == "*.b.example" and reply.response.startswith(b"HTTP/1.1 200 ")
    assert rsp.alive


def test_unchanged_files_are_not_validated_again_changed_ones_are(certs: CertSet, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A reload's check in the master: a certificate whose files are as they were is not planned again (its
    chain planning's warning is not repeated); one whose key changed is, and the mismatch is found."""
    a = copied(certs.ca.issue("fresh", ["a.example"]), tmp_path)  # bytes no earlier test validated
    config = parse_config(three_certs(a, pair(certs.b), pair(certs.fallback)), "site.lua")
    spec = config.tls.listeners["listen[1]"]
    planned_again = []
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            plan_tls_server(config, spec)
        # no trust store holds the tests' CA: the planning warns that a.crt is served as given
        planned_again.append(any(f"serving {a[0]} as given" in r.getMessage() for r in caplog.records))
    assert planned_again == [True, False]
    shutil.copy(certs.b.key_path, a[1])
    with pytest.raises(ConfigError) as info:
        plan_tls_server(config, spec)
    assert info.value.key == "listen[1].tls.certificates[1].key" and "does not match" in info.value.message
