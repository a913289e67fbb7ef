"""The TLS config keys (rsp.config.tls_section) and the listener's start-up checks (rsp.tls.server_context):
errors name the file, the line and the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rsp.config.lua_loader import parse_config
from rsp.errors import ConfigError
from rsp.tls.server_context import build_tls_server

from .certs import Authority
from .conftest import CertSet


def one_cert(cert: object, key: object, extra: str = "") -> str:
    return f'{{ certificates = {{ {{ cert = "{cert}", key = "{key}" }} }}{extra} }}'


def listener(certs: CertSet, tls: str, *, mode: str = "http") -> str:
    return f"""pools = {{ web = {{ backends = {{ "127.0.0.1:9" }} }} }}
listen = {{
  {{ port = 8443, mode = "{mode}", pool = "web",
    tls = {tls} }},
}}
"""


def test_certificates_parsed_with_names_from_the_certificate(certs: CertSet) -> None:
    config = parse_config(listener(certs, f"""{{ certificates = {{
        {{ cert = "{certs.a.cert_path}", key = "{certs.a.key_path}" }},
        {{ cert = "{certs.b.cert_path}", key = "{certs.b.key_path}", names = {{ "Extra.Example" }} }} }},
        default = "extra.example" }}"""), "site.lua")
    spec = config.tls.listeners["listen[1]"]
    assert [c.names for c in spec.certificates] == [(), ("extra.example",)]
    assert spec.protocols == ("TLSv1.2", "TLSv1.3")
    server = build_tls_server(config, spec)
    assert set(server.names.exact) == {"a.example", "extra.example"}
    assert [p.names for p in server.planned] == [("a.example",), ("extra.example",)]
    assert server.select(None) is server.default is server.select("extra.example")
    first = server.select("a.example")  # built on first use, then the same context for every handshake
    assert first is not server.default and server.select("A.Example") is first


def error_of(source: str, build: bool = False) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config = parse_config(source, "site.lua")
        if build:
            build_tls_server(config, config.tls.listeners["listen[1]"])
    return info.value


def test_key_not_matching_the_certificate(certs: CertSet) -> None:
    err = error_of(listener(certs, one_cert(certs.a.cert_path, certs.b.key_path)), build=True)
    assert err.key == "listen[1].tls.certificates[1].key"
    assert err.line == 4 and err.path == "site.lua"
    assert "does not match" in err.message


def test_unreadable_certificate(certs: CertSet, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    err = error_of(listener(certs, f'{{ certificates = {{ {{ cert = "{missing}" }} }} }}'), build=True)
    assert err.key == "listen[1].tls.certificates[1].cert" and str(missing) in err.message


@pytest.mark.parametrize(("tls", "key", "words"), [
    ("{ }", "listen[1].tls.certificates", "missing"),
    ('{ certificates = { { key = "k" } } }', "listen[1].tls.certificates[1].cert", "missing"),
    ('{ certificates = { { cert = "c", names = { "a.*.example" } } } }', "listen[1].tls.certificates[1].names",
     "name like"),
    ('{ certificates = { { cert = "c" } }, protocols = { "TLSv1.1" } }', "listen[1].tls.protocols", "RFC 8996"),
    ('{ certificates = { { cert = "c" } }, colour = "blue" }', "listen[1].tls.colour", "unknown key"),
])
def test_listener_tls_syntax(certs: CertSet, tls: str, key: str, words: str) -> None:
    err = error_of(listener(certs, tls))
    assert err.key == key and words in err.message


def test_default_must_be_served(certs: CertSet) -> None:
    err = error_of(listener(certs, one_cert(certs.a.cert_path, certs.a.key_path, ', default = "other.example"')),
                   build=True)
    assert err.key == "listen[1].tls.default"


def test_sni_routing_keys() -> None:
    base = 'pools = { a = { backends = { "127.0.0.1:9" } } }\n'
    ok = parse_config(base + 'listen = { { port = 443, pool = "a", sni_routes = { { name = "*.X.example", '
                      'pool = "a" } }, sni_default = "a", sni_timeout = 2 } }', "s.lua")
    routing = ok.tls.sni["listen[1]"]
    assert routing.routes[0].name == "*.x.example" and routing.default == "a" and routing.timeout == 2.0
    for listen, key in (
        ('{ port = 443, pool = "a", sni_routes = { { name = "a.example", pool = "nope" } } }',
         "listen[1].sni_routes[1].pool"),
        ('{ port = 443, pool = "a", sni_default = "nope" }', "listen[1].sni_default"),
        ('{ port = 443, mode = "http", pool = "a", sni_default = "a" }', "listen[1].sni_routes"),
        ('{ port = 443, pool = "a", sni_timeout = 1 }', "listen[1].sni_timeout"),
    ):
        assert error_of(base + f"listen = {{ {listen} }}").key == key


def test_pool_tls_keys() -> None:
    config = parse_config('pools = { a = { backends = { "127.0.0.1:9" }, tls = { ca = "ca.pem", sni = "App" } } }\n'
                          'listen = { { port = 80, mode = "http", pool = "a" } }', "s.lua")
    assert config.tls.pools["a"].sni == "app" and config.tls.pools["a"].verify
    err = error_of('pools = { a = { backends = { "127.0.0.1:9" }, tls = { verify = "yes" } } }\n'
                   'listen = { { port = 80, pool = "a" } }')
    assert err.key == "pools.a.tls.verify"


def test_expiry_warning(certs: CertSet, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    soon = Authority(tmp_path, "soon-ca").issue("soon", ["soon.example"], days=10)
    config = parse_config(listener(certs, one_cert(soon.cert_path, soon.key_path)), "s.lua")
    with caplog.at_level(logging.WARNING):
        build_tls_server(config, config.tls.listeners["listen[1]"])
    assert any("expires on" in r.getMessage() and "listen[1].tls.certificates[1]" in r.getMessage()
               for r in caplog.records)


def test_check_loads_the_certificates(certs: CertSet, tmp_path: Path) -> None:
    """`rsp --check` (rsp.preflight) reads and matches certificates and keys as start does."""
    from rsp.preflight import check_startable
    from support.rsp_process import free_port

    source = listener(certs, one_cert(certs.a.cert_path, certs.b.key_path)).replace("8443", str(free_port()))
    with pytest.raises(ConfigError) as info:
        check_startable(parse_config(source, "site.lua"))
    assert info.value.key == "listen[1].tls.certificates[1].key"
    pool = ('pools = { a = { backends = { "127.0.0.1:9" }, tls = { ca = "' + str(tmp_path / "none.pem") + '" } } }\n'
            f'listen = {{ {{ port = {free_port()}, address = "127.0.0.1", mode = "http", pool = "a" }} }}')
    with pytest.raises(ConfigError) as info:
        check_startable(parse_config(pool, "site.lua"))
    assert info.value.key == "pools.a.tls.ca"


def test_a_missing_key_file_is_named_with_its_path_and_key(certs: CertSet, tmp_path: Path) -> None:
    """OpenSSL's load_cert_chain reports no file name: the error must still say which file (not `None`)."""
    missing = tmp_path / "gone.key"
    err = error_of(listener(certs, one_cert(certs.a.cert_path, missing)), build=True)
    assert err.key == "listen[1].tls.certificates[1].key" and err.line == 4
    assert str(err) == (f"site.lua:4: listen[1].tls.certificates[1].key: cannot read {missing}: "
                        "No such file or directory")
