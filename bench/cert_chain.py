"""What rsp's chain builder costs: per signature check, per search, and at its bounds.

    .venv/bin/python bench/cert_chain.py            # ~20 s (RSA 4096 key generation is most of it)
    .venv/bin/python bench/cert_chain.py --quick    # ~8 s

Prints CPU time (best of several windows, this process) of:

- one signature check (`facts.signature_verifies`) by an ECDSA P-256, RSA 2048 and RSA 4096 issuer key;
- `choose_chain` on the 2015 bundle (leaf, SHA-256 intermediate, its cross-signed twin, a cross-signed root;
  two trusted roots), which a TLS listener runs once per certificate at start-up;
- `choose_chain` against a hostile pool: 2000 certificates under the intermediate's name whose keys do not
  verify (RSA 4096 and ECDSA), to show that MAX_SIGNATURE_CHECKS bounds the worst case;
- loading the system root store (`load_roots(None)`), what `rsp cert check` pays before anything else;

and the ratio of the hostile search to the normal one.
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from rsp.certs import facts
from rsp.certs.bundle import load_roots
from rsp.certs.chain import MAX_SIGNATURE_CHECKS, choose_chain

UTC = datetime.UTC
AT = datetime.datetime(2025, 6, 1, tzinfo=UTC)
HOSTILE_POOL = 2000
Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def name(text: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])


def certificate(subject: str, key: Key, issuer: str, issuer_key: Key, *, ca: bool = True) -> x509.Certificate:
    return (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime.datetime(2030, 1, 1, tzinfo=UTC))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def best_of(function: Callable[[], object], windows: int, calls: int) -> float:
    """Seconds of CPU per call: the best of `windows` windows of `calls` calls."""
    best = float("inf")
    for _ in range(windows):
        start = time.process_time()
        for _ in range(calls):
            function()
        best = min(best, (time.process_time() - start) / calls)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer windows and calls")
    args = parser.parse_args()
    windows, calls = (3, 20) if args.quick else (7, 50)

    ec_root = ec.generate_private_key(ec.SECP256R1())
    keys: dict[str, Key] = {
        "ECDSA P-256": ec_root,
        "RSA 2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "RSA 4096": rsa.generate_private_key(public_exponent=65537, key_size=4096),
    }
    child_key = ec.generate_private_key(ec.SECP256R1())
    print("one signature check (facts.signature_verifies):")
    for label, key in keys.items():
        parent = certificate("Parent", key, "Parent", key)
        child = certificate("Child", child_key, "Parent", key)
        assert facts.signature_verifies(child, parent)
        cost = best_of(lambda c=child, p=parent: facts.signature_verifies(c, p), windows, calls * 4)
        print(f"  {label:<12} {cost * 1e6:8.1f} us")

    root_b_key = keys["RSA 2048"]
    i1_key = ec.generate_private_key(ec.SECP256R1())
    root_a = certificate("Root A", ec_root, "Root A", ec_root)
    root_b = certificate("Old Root B", root_b_key, "Old Root B", root_b_key)
    i1 = certificate("Intermediate 1", i1_key, "Root A", ec_root)
    i1_cross = certificate("Intermediate 1", i1_key, "Old Root B", root_b_key)
    a_cross = certificate("Root A", ec_root, "Old Root B", root_b_key)
    leaf = certificate("www.example.test", ec.generate_private_key(ec.SECP256R1()), "Intermediate 1", i1_key,
                       ca=False)
    pool = [leaf, i1_cross, a_cross, i1]
    roots = [root_a, root_b]
    normal = best_of(lambda: choose_chain(leaf, pool, roots, at=AT), windows, calls)
    choice = choose_chain(leaf, pool, roots, at=AT)
    assert choice.best is not None and len(choice.paths) == 3
    print(f"choose_chain, the 2015 bundle (3 paths):        {normal * 1e3:8.2f} ms")

    hostile: list[x509.Certificate] = []
    impostor_keys: list[Key] = [keys["RSA 4096"], ec.generate_private_key(ec.SECP256R1())]
    for index in range(HOSTILE_POOL):
        impostor = impostor_keys[index % 2]
        hostile.append(certificate("Intermediate 1", impostor, "Root A", ec_root))
    hostile.append(i1)
    bounded = best_of(lambda: choose_chain(leaf, hostile, roots, at=AT), max(2, windows // 2), 1)
    result = choose_chain(leaf, hostile, roots, at=AT)
    print(f"choose_chain, {HOSTILE_POOL} same-named impostors:      {bounded * 1e3:8.2f} ms "
          f"(truncated={result.truncated}, bound {MAX_SIGNATURE_CHECKS} checks)")
    print(f"  ratio hostile / normal: {bounded / normal:.0f}x")

    start = time.process_time()
    system = load_roots(None)
    print(f"load_roots(None): {len(system)} roots in {(time.process_time() - start) * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
