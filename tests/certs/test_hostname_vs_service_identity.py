"""Why rsp keeps its own RFC 6125 matcher (rsp.certs.hostname) rather than pyca's service-identity.

Evaluated against service-identity 26.1.0 (`verify_certificate_hostname` / `verify_certificate_ip_address`)
on the same certificates (the results: the table in docs/certs.md). The two agree on the
matching rules themselves, the first table below. They differ where `rsp cert check`'s job differs from a
client's yes-or-no: the second table is each case where rsp must answer otherwise, with what service-identity
does. Together with service-identity's extra dependency (attrs) for about 30 lines, that decides it: rsp
keeps its matcher; this test fails if it drifts from the agreed rules or loses what a report needs.
"""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cert_pki import cn, ec_key
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from rsp.certs.hostname import match_host


def certificate(dns: tuple[str, ...] = (), ips: tuple[str, ...] = (), common_name: str = "x") -> x509.Certificate:
    key = ec_key("service-identity-comparison")
    builder = (x509.CertificateBuilder().subject_name(cn(common_name)).issuer_name(cn("CA"))
               .public_key(key.public_key()).serial_number(1)
               .not_valid_before(datetime.datetime(2020, 1, 1)).not_valid_after(datetime.datetime(2040, 1, 1)))
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256())


# (SAN DNS names, SAN IPs, host, match?): service-identity 26.1.0 gives the same verdict on every row.
AGREED = [
    (("www.example.com",), (), "www.example.com", True),
    (("WWW.Example.COM",), (), "www.example.com", True),
    (("*.example.com",), (), "a.example.com", True),
    (("*.example.com",), (), "example.com", False),        # RFC 6125 §6.4.3: exactly one label
    (("*.example.com",), (), "a.b.example.com", False),
    (("w*.example.com",), (), "www.example.com", False),   # partial wildcards refused by both
    (("a.example",), ("10.0.0.1",), "10.0.0.1", True),      # an IP host against iPAddress entries
    (("a.example",), ("10.0.0.1",), "10.0.0.2", False),
]


@pytest.mark.parametrize(("dns", "ips", "host", "expected"), AGREED)
def test_where_rsp_and_service_identity_agree(dns: tuple[str, ...], ips: tuple[str, ...], host: str,
                                              expected: bool) -> None:
    assert match_host(certificate(dns, ips), host).matches is expected


def test_a_certificate_with_only_a_common_name_is_reported_not_refused() -> None:
    """service-identity: CertificateError "Certificate does not contain any `subjectAltName`s": no verdict.
    rsp cert check must still say the CN names the host, and that only old clients accept that (§6.4.4)."""
    match = match_host(certificate(common_name="www.example.com"), "www.example.com")
    assert match.matches and match.from_common_name and match.names == ("www.example.com",)


@pytest.mark.parametrize(("bad", "host"), [("*.com", "example.com"), ("10.0.0.1", "10.0.0.1")])
def test_one_unusable_name_does_not_void_the_others(bad: str, host: str) -> None:
    """service-identity raises CertificateError for the whole certificate when one DNS-ID is unusable (a
    wildcard over a TLD, an IP address written as a DNS name); a report names every name and judges the rest."""
    assert not match_host(certificate((bad,)), host).matches  # an IP host is compared with iPAddress entries only
    with_good = match_host(certificate((bad, "www.example.com")), "www.example.com")
    assert with_good.matches and with_good.matched == "www.example.com" and bad in with_good.names


def test_the_report_gets_the_name_that_matched() -> None:
    """service-identity returns None on success: which of a certificate's names matched is not said."""
    match = match_host(certificate(("a.example.com", "*.example.com")), "www.example.com")
    assert match.matched == "*.example.com" and match.names == ("a.example.com", "*.example.com")


def test_an_absolute_host_name_and_an_idn_host() -> None:
    """service-identity: `www.example.com.` (a fully qualified name, as `--host` may be typed) does not match
    `www.example.com`, and a non-ASCII host needs the optional `idna` package (ImportError without it)."""
    assert match_host(certificate(("www.example.com",)), "www.example.com.").matches
    assert match_host(certificate(("xn--bcher-kva.example",)), "bücher.example").matches
