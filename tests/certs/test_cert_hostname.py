"""rsp.certs.hostname: RFC 6125 §6.4 matching, wildcards per §6.4.3, CN only without a dNSName."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cert_pki import cn, ec_key
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from rsp.certs.hostname import match_host, name_matches


@pytest.mark.parametrize(("pattern", "host", "expected"), [
    ("www.example.com", "www.example.com", True),
    ("WWW.Example.COM", "www.example.com", True),      # case-insensitive
    ("www.example.com.", "www.example.com", True),     # absolute form in the certificate
    ("*.example.com", "www.example.com", True),
    ("*.example.com", "example.com", False),           # the wildcard is exactly one label
    ("*.example.com", "a.b.example.com", False),
    ("*.example.com", ".example.com", False),           # an empty label is not a label
    ("w*.example.com", "www.example.com", False),      # partial wildcards refused (BR 7.1.4.2.1)
    ("*.*.example.com", "a.b.example.com", False),
    ("www.*.com", "www.example.com", False),           # only the left-most label
    ("*.com", "example.com", False),                   # too broad
    ("other.example.com", "www.example.com", False),
])
def test_name_matches(pattern: str, host: str, expected: bool) -> None:
    assert name_matches(pattern, host) is expected


def certificate(subject: str, dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> x509.Certificate:
    key = ec_key("hostname-tests")
    builder = (x509.CertificateBuilder().subject_name(cn(subject)).issuer_name(cn("CA"))
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(datetime.datetime(2020, 1, 1))
               .not_valid_after(datetime.datetime(2030, 1, 1)))
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_subject_alt_names_win_over_the_common_name() -> None:
    cert = certificate("cn.example.com", dns=("san.example.com", "*.apps.example.com"))
    assert match_host(cert, "san.example.com").matches
    assert match_host(cert, "SAN.example.com.").matched == "san.example.com"
    assert match_host(cert, "x.apps.example.com").matched == "*.apps.example.com"
    miss = match_host(cert, "cn.example.com")
    assert not miss.matches and miss.names == ("san.example.com", "*.apps.example.com")
    assert not miss.from_common_name


def test_common_name_is_used_only_without_a_dns_name() -> None:
    only_cn = certificate("cn.example.com")
    result = match_host(only_cn, "cn.example.com")
    assert result.matches and result.from_common_name
    with_ip = certificate("cn.example.com", ips=("192.0.2.1",))
    assert match_host(with_ip, "cn.example.com").from_common_name


def test_ip_hosts_match_ip_entries_only() -> None:
    cert = certificate("192.0.2.7", dns=("192.0.2.7",), ips=("192.0.2.1", "2001:db8::1"))
    assert match_host(cert, "192.0.2.1").matches
    assert match_host(cert, "[2001:db8::1]").matches
    assert not match_host(cert, "192.0.2.7").matches  # a DNS name spelling an address does not count


def test_internationalised_host_is_compared_as_its_a_label() -> None:
    cert = certificate("x", dns=("xn--bcher-kva.example",))
    assert match_host(cert, "bücher.example").matches
