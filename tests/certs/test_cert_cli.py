"""`rsp cert check` and `rsp cert bundle` run as real processes: exit codes, --json shape, colour, and the
bundle's output verified by `openssl verify`."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from cert_pki import EPOCH_2010, FAR_FUTURE, cn, ec_key, pem_of
from cert_story import HOST, Story
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from rsp.commands.cert import parse_at

AT_ARG = "2015-06-01"
ATTIME = "1433116800"  # 2015-06-01T00:00:00Z, for openssl verify -attime
TIMEOUT = 60


def rsp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rsp", *args], capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, **(env or {})})


@pytest.fixture()
def files(story: Story, tmp_path: Path) -> dict[str, str]:
    paths = {
        "good": pem_of(story.leaf, story.i1),
        "nss": pem_of(story.leaf, story.i1_cross, story.i1, story.a_cross),
        "reversed": pem_of(story.i1, story.leaf),
        "weak": pem_of(story.leaf, story.i1_cross),
        "roots": pem_of(story.root_a, story.root_b),
        "root_b": pem_of(story.root_b),
        "leaf": pem_of(story.leaf),
        "garbage": b"this is not PEM\n",
    }
    out = {}
    for name, data in paths.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(data)
        out[name] = str(path)
    return out


def test_check_good_bundle_exits_0_with_a_table(files: dict[str, str]) -> None:
    result = rsp("cert", "check", files["good"], "--roots", files["roots"], "--at", AT_ARG, "--host", HOST,
                 env={"NO_COLOR": ""})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{files['good']}: checked at 2015-06-01 00:00:00 UTC, policy default, host {HOST}"
    assert lines[2].split() == ["#", "role", "subject", "issuer", "valid", "from", "valid", "until", "key",
                                "signature", "verified"]
    assert lines[3].split()[:3] == ["1", "leaf", HOST]
    assert 'chosen path: "www.example.test" <- "Intermediate 1" <- "Root A"' in lines
    assert lines[-1] == "OK: 0 warning(s)"
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_check_problems_exit_1(files: dict[str, str]) -> None:
    result = rsp("cert", "check", files["reversed"], "--roots", files["roots"], "--at", AT_ARG)
    assert result.returncode == 1
    assert "wrong-order" in result.stdout and result.stdout.rstrip().endswith("PROBLEMS: 1 error(s), 0 warning(s)")
    missing = rsp("cert", "check", files["leaf"], "--roots", files["roots"], "--at", AT_ARG, "--json")
    assert missing.returncode == 1
    assert [f["code"] for f in json.loads(missing.stdout)["findings"]] == ["missing-intermediate"]


@pytest.mark.parametrize(("which", "message"), [
    ("garbage", "no PEM certificate found"),
    ("missing", "cannot read: No such file or directory"),
])
def test_unusable_input_exits_2(files: dict[str, str], which: str, message: str) -> None:
    path = files.get(which, files["good"] + ".missing")
    result = rsp("cert", "check", path, "--roots", files["roots"])
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"rsp cert check: {path}: {message}")


def test_bad_arguments_exit_2(files: dict[str, str]) -> None:
    bad_date = rsp("cert", "check", files["good"], "--at", "June 2015")
    assert bad_date.returncode == 2 and "--at 'June 2015' is not an ISO 8601 date" in bad_date.stderr
    bad_roots = rsp("cert", "check", files["good"], "--roots", files["garbage"])
    assert bad_roots.returncode == 2 and "no PEM certificate found" in bad_roots.stderr
    no_action = rsp("cert")
    assert no_action.returncode == 2 and "rsp cert: error" in no_action.stderr
    assert rsp("cert", "check", "--help").returncode == 0


def test_json_shape(files: dict[str, str]) -> None:
    result = rsp("cert", "check", files["nss"], "--roots", files["roots"], "--at", AT_ARG, "--host", HOST,
                 "--json")
    assert result.returncode == 0, result.stdout
    document = json.loads(result.stdout)
    assert set(document) == {"version", "source", "at", "policy", "host", "status", "exit_status", "certificates",
                             "chain", "host_match", "findings"}
    assert (document["version"], document["status"], document["at"]) == (1, "ok", "2015-06-01T00:00:00+00:00")
    first = document["certificates"][0]
    assert set(first) == {"index", "role", "subject", "subject_name", "issuer", "issuer_name", "not_before",
                          "not_after", "validity", "key", "signature_algorithm", "signature", "sha256"}
    assert first["key"] == {"type": "EC P-256", "bits": 256}
    assert [c["role"] for c in document["certificates"]] == ["leaf", "unused", "intermediate", "unused"]
    served = [c["subject"] for c in document["chain"]["served"]]
    assert served == [HOST, "Intermediate 1"]
    assert document["chain"]["best"]["chosen"] is True
    assert [len(p["certificates"]) for p in document["chain"]["paths"]] == [3, 3, 4]
    assert all(p["weak_links"] for p in document["chain"]["paths"][1:])
    assert document["host_match"] == {"matches": True, "matched": HOST, "names": [HOST, "*.example.test"],
                                      "from_common_name": False}
    assert {f["code"] for f in document["findings"]} == {"unused", "other-path"}
    assert set(document["findings"][0]) == {"severity", "code", "message", "certificate"}


def test_colour_only_on_a_terminal_without_no_color(files: dict[str, str]) -> None:
    def run_on_pty(env: dict[str, str]) -> str:
        main, secondary = pty.openpty()
        try:
            process = subprocess.run(
                [sys.executable, "-m", "rsp", "cert", "check", files["reversed"], "--roots", files["roots"],
                 "--at", AT_ARG], stdout=secondary, stderr=subprocess.PIPE, timeout=TIMEOUT, env=env)
            os.close(secondary)
            secondary = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the writer is gone and everything was read
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert process.returncode == 1
            return b"".join(chunks).decode()
        finally:
            os.close(main)
            if secondary != -1:
                os.close(secondary)

    base = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    assert "\x1b[31merror" in run_on_pty(base)
    assert "\x1b[" not in run_on_pty({**base, "NO_COLOR": "1"})


def test_bundle_writes_the_short_strong_chain_and_openssl_agrees(files: dict[str, str], tmp_path: Path,
                                                                 story: Story) -> None:
    result = rsp("cert", "bundle", files["nss"], "--roots", files["roots"], "--at", AT_ARG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.encode() == pem_of(story.leaf, story.i1)
    assert 'chose "www.example.test" <- "Intermediate 1" <- "Root A"' in result.stderr
    assert "SHA-1 cross-signed" in result.stderr
    served = tmp_path / "served.pem"
    served.write_text(result.stdout)
    trusted_a = tmp_path / "root_a.pem"
    trusted_a.write_bytes(pem_of(story.root_a))
    leaf = tmp_path / "leaf-only.pem"
    leaf.write_bytes(pem_of(story.leaf))
    # The real OpenSSL verifies the written chain against Root A alone: nothing is missing, nothing weak.
    verify = subprocess.run(["openssl", "verify", "-attime", ATTIME, "-CAfile", str(trusted_a), "-untrusted",
                             str(served), str(leaf)], capture_output=True, text=True, timeout=TIMEOUT)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_bundle_refuses_when_every_path_is_weak(files: dict[str, str]) -> None:
    result = rsp("cert", "bundle", files["weak"], "--roots", files["root_b"], "--at", AT_ARG)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "rsp cert bundle: no usable chain:" in result.stderr
    assert 'has weak links: SHA-1 signature on "Intermediate 1"' in result.stderr


def test_default_roots_are_the_system_store(files: dict[str, str]) -> None:
    # The test hierarchy's Root A is in no system store: the same bundle that passes with --roots fails here.
    result = rsp("cert", "check", files["good"], "--at", AT_ARG, "--json")
    assert result.returncode == 1
    assert [f["code"] for f in json.loads(result.stdout)["findings"]] == ["missing-intermediate"]


def test_at_accepts_dates_times_and_offsets() -> None:
    assert parse_at("2015-06-01").isoformat() == "2015-06-01T00:00:00+00:00"
    assert parse_at("2015-06-01T02:30:00+02:00").isoformat() == "2015-06-01T00:30:00+00:00"
    assert parse_at("2015-06-01T00:30:00Z").isoformat() == "2015-06-01T00:30:00+00:00"


def root_with_a_zero_authority_serial() -> x509.Certificate:
    """A self-signed root whose authorityKeyIdentifier names serial 0 (RFC 5280 §4.1.2.2 wants it positive),
    as some roots of Debian's trust store do: cryptography warns when its extensions are first read."""
    key = ec_key("odd-root")
    name = cn("Odd Root")
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(5).not_valid_before(EPOCH_2010).not_valid_after(FAR_FUTURE)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier(b"odd", [x509.DirectoryName(name)], 0), critical=False)
            .sign(key, hashes.SHA256()))


def test_a_bundle_of_roots_is_recognised_and_said_so(story: Story, files: dict[str, str]) -> None:
    result = rsp("cert", "check", files["roots"], "--at", AT_ARG)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{files['roots']}: a bundle of 2 root certificates (a trust store), not a "
                                    "server's chain")
    assert f"rsp cert check SITE.pem --roots {files['roots']}" in result.stdout
    assert "leaf" not in result.stdout and "sent for nothing" not in result.stdout
    document = json.loads(rsp("cert", "check", files["roots"], "--at", AT_ARG, "--json").stdout)
    assert document["kind"] == "roots" and document["roots"] == 2 and document["not_valid_now"] == []


def test_a_certificate_cryptography_warns_about_prints_no_warning(story: Story, tmp_path: Path) -> None:
    odd = tmp_path / "odd.pem"
    odd.write_bytes(pem_of(root_with_a_zero_authority_serial(), story.root_b))
    result = rsp("cert", "check", str(odd), "--at", AT_ARG)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no CryptographyDeprecationWarning with a source path
    assert "a bundle of 2 root certificates" in result.stdout


def test_the_systems_trust_store_is_a_bundle_of_roots_without_warnings() -> None:
    store = "/etc/ssl/certs/ca-certificates.crt"  # Debian's ca-certificates (a dependency of openssl here)
    result = rsp("cert", "check", store)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.startswith(f"{store}: a bundle of ")
