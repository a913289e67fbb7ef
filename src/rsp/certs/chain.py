"""Chain building: every path from a leaf to a trusted root through a pool of candidates, and the choice.

Why this exists: in 2015 a certificate bundle could hold two ways up to a trusted root, a SHA-256 path and a
legacy path through a SHA-1 cross-signed intermediate. NSS before 3.17.4 preferred a longer, weaker chain
over a shorter, stronger one, so the same bundle looked broken on some machines and fine on others. rsp
enumerates every path, chooses the shortest one with no weak link, and says why the others lost.

How (the shape of Go's crypto/x509 `buildChains`, written again here): from the current certificate, try the
trusted roots, then the candidate intermediates, whose subject is the current certificate's issuer name and
whose key verifies its signature; a root ends a path, an intermediate extends it. A parent whose subject and
key already appear in the path is skipped, so cross-signed pairs and mutual cross-signs never loop. The
authority key identifier, when present, orders the candidates (matching subject key identifier first); it
never excludes one, because CAs have issued mismatched identifiers. Depth, path count and signature checks
are bounded, so a hostile pool of thousands of same-named certificates costs a bounded time.

Pure: the moment validity is checked at is the `at` argument; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509

from rsp.certs import facts
from rsp.errors import CertificateError

# Certificates in one path, leaf and root included. Real web PKI paths have 3 or 4; 8 leaves room for
# bridge CAs and cross-signs while keeping a malicious pool from making the search deep.
MAX_PATH_LENGTH = 8
# Paths kept. Each cross-signed CA on the way doubles the count; 64 is six independent cross-signs.
MAX_PATHS = 64
# Signature verifications in one search (Go allows 100 per chain build). Each costs ~50 us (ECDSA) to
# ~1 ms (RSA 4096), so 512 keeps the worst case well under a second.
MAX_SIGNATURE_CHECKS = 512

POLICY_DEFAULT = "default"
# Chrome's 2014-2015 SHA-1 sunset, announced in "Gradually sunsetting SHA-1", Google Online Security Blog,
# 2014-09-05 (https://security.googleblog.com/2014/09/gradually-sunsetting-sha-1.html): from Chrome 41
# (early 2015), a SHA-1 signature anywhere below the trust anchor of a chain whose leaf expires on or after
# 2016-01-01 made the connection insecure; leaves expiring earlier were left alone. rsp reports the former
# as a weak link and the latter as a warning.
POLICY_CHROME_SHA1_SUNSET = "chrome-sha1-sunset"
POLICIES = (POLICY_DEFAULT, POLICY_CHROME_SHA1_SUNSET)
SHA1_SUNSET = datetime(2016, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Path:
    """One way from the leaf to a trust anchor: `certificates` leaf first, the anchor (a trusted root) last.

    `weak_links`: why a client may reject or flag the path (MD5/SHA-1 signatures below the anchor, RSA keys
    under 2048 bits). `problems`: what makes it invalid now (expired or not-yet-valid certificates, an
    intermediate that is not a CA). `warnings`: what a person should know but no client rejects.
    """

    certificates: tuple[x509.Certificate, ...]
    weak_links: tuple[str, ...]
    problems: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def anchor(self) -> x509.Certificate:
        return self.certificates[-1]

    @property
    def intermediates(self) -> tuple[x509.Certificate, ...]:
        return self.certificates[1:-1]

    @property
    def weak(self) -> bool:
        return bool(self.weak_links)

    @property
    def expires(self) -> datetime:
        """The earliest end of validity on the path: when the path as a whole stops working."""
        return min(facts.not_after(certificate) for certificate in self.certificates)

    def describe(self) -> str:
        """'"leaf" <- "Intermediate" <- "Root"'."""
        return " <- ".join(f'"{facts.subject_of(certificate)}"' for certificate in self.certificates)


@dataclass(frozen=True)
class ChainChoice:
    """The result of a search: the chosen path, every path best first, and why the others lost.

    `best` is None when no path exists or every path has a weak link; `explanations` then says why.
    `truncated` is True when a bound (MAX_PATHS, MAX_SIGNATURE_CHECKS) stopped the search early.
    """

    best: Path | None
    paths: tuple[Path, ...]
    explanations: tuple[str, ...]
    truncated: bool = False


def choose_chain(leaf: x509.Certificate, candidates: Sequence[x509.Certificate], roots: Sequence[x509.Certificate],
                 *, at: datetime, policy: str = POLICY_DEFAULT) -> ChainChoice:
    """Every path from `leaf` to one of `roots` through `candidates`, ranked, with the best one chosen.

    Best: the shortest path with no weak link, preferring paths with no problem; ties go to the strongest
    signatures (weakest link first), then the latest expiry. `candidates` may hold the leaf itself, roots,
    and unrelated certificates: they are ignored where they do not fit.
    """
    if policy not in POLICIES:
        raise CertificateError(f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
    search = _Search(leaf, candidates, roots)
    found = search.run()
    paths = sorted((evaluate_path(certificates, at=at, policy=policy) for certificates in found), key=_rank)
    best = next((path for path in paths if not path.weak), None)
    if best is not None:
        paths.remove(best)
        paths.insert(0, best)
    explanations = explain(best, paths, search.pool, search.roots) if paths else (
        missing_link(leaf, candidates, roots),)
    if search.truncated:
        explanations += (f"the search stopped at a bound ({MAX_PATHS} paths or {MAX_SIGNATURE_CHECKS} signature "
                         "checks): more paths may exist",)
    return ChainChoice(best=best, paths=tuple(paths), explanations=explanations, truncated=search.truncated)


def serving_chain(choice: ChainChoice) -> tuple[x509.Certificate, ...]:
    """What a server sends for the best path: the leaf, then the intermediates in order, without the root
    (RFC 8446 §4.4.2: the root "MAY be omitted" since the client must already have it to trust it).

    Raises CertificateError when there is no best path (none found, or every path weak); a caller allowed
    to serve a weak chain uses `path_serving_chain(choice.paths[0])`.
    """
    if choice.best is None:
        reason = "; ".join(choice.explanations) or "no path to a trusted root"
        raise CertificateError(f"no usable certificate chain: {reason}")
    return path_serving_chain(choice.best)


def path_serving_chain(path: Path) -> tuple[x509.Certificate, ...]:
    """The certificates of `path` a server sends: all but the trust anchor (the leaf alone if it is one)."""
    if len(path.certificates) == 1:
        return path.certificates
    return path.certificates[:-1]


def evaluate_path(certificates: tuple[x509.Certificate, ...], *, at: datetime, policy: str) -> Path:
    """A Path with its weak links, problems and warnings, judged at `at` under `policy`."""
    weak: list[str] = []
    problems: list[str] = []
    warnings: list[str] = []
    leaf = certificates[0]
    last = len(certificates) - 1
    for index, certificate in enumerate(certificates):
        subject = facts.subject_of(certificate)
        # The anchor's own signature is never checked by a client (it is trusted as configured): skip it.
        hash_name = facts.weak_signature(certificate) if index < last else None
        if hash_name == "SHA-1" and policy == POLICY_CHROME_SHA1_SUNSET and facts.not_after(leaf) < SHA1_SUNSET:
            warnings.append(f'SHA-1 signature on "{subject}" (leaf expires before 2016-01-01: allowed by Chrome)')
        elif hash_name is not None:
            text = f'{hash_name} signature on "{subject}" (signed by "{facts.issuer_of(certificate)}")'
            if policy == POLICY_CHROME_SHA1_SUNSET and hash_name == "SHA-1":
                text += " in a chain whose leaf expires on or after 2016-01-01 (Chrome's SHA-1 sunset)"
            weak.append(text)
        key = facts.weak_key(certificate)
        if key is not None:
            weak.append(f'{key} key in "{subject}" (under {facts.MIN_RSA_BITS} bits)')
        validity = facts.validity_problem(certificate, at)
        if validity is not None:
            problems.append(f'"{subject}" {validity}')
        if 0 < index < last:
            problems.extend(_intermediate_problems(certificate, index))
    return Path(certificates=certificates, weak_links=tuple(weak), problems=tuple(problems),
                warnings=tuple(warnings))


def _intermediate_problems(certificate: x509.Certificate, index: int) -> list[str]:
    """RFC 5280 §6.1.4 (k), (l), (n): an intermediate must be a CA, within its path length, allowed to sign."""
    subject = facts.subject_of(certificate)
    problems = []
    if not facts.is_ca(certificate):
        problems.append(f'"{subject}" is used as an intermediate but is not a CA (basicConstraints)')
    limit = facts.path_length_limit(certificate)
    if limit is not None and index - 1 > limit:
        problems.append(f'"{subject}" allows {limit} intermediates below it, the path has {index - 1}')
    if not facts.may_sign_certificates(certificate):
        problems.append(f'"{subject}" may not sign certificates (keyUsage lacks keyCertSign)')
    return problems


def _rank(path: Path) -> tuple[bool, bool, int, tuple[int, ...], float]:
    """Sort key, smaller is better: no weak link, no problem, fewer certificates, strongest weakest link,
    latest expiry."""
    return (path.weak, bool(path.problems), len(path.certificates), _strength_key(path),
            -path.expires.timestamp())


def _strength_key(path: Path) -> tuple[int, ...]:
    """The link strengths weakest first, negated: compares the weakest link, then the next, ..."""
    links = path.certificates[:-1] or path.certificates
    return tuple(-strength for strength in sorted(facts.signature_strength(c) for c in links))


class _Search:
    """One depth-first enumeration, with its bounds and a memo of verified (child, parent) links."""

    def __init__(self, leaf: x509.Certificate, candidates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate]) -> None:
        self.leaf = leaf
        self.roots = _unique(roots)
        root_ders = {_der(root) for root in self.roots}
        leaf_der = _der(leaf)
        # A root in the bundle is the same root: it is used as an anchor, never as an intermediate.
        self.pool = [c for c in _unique(candidates) if _der(c) not in root_ders and _der(c) != leaf_der]
        self.root_ders = root_ders
        self.checks = 0
        self.truncated = False
        self.verified: dict[tuple[int, int], bool] = {}
        self.found: list[tuple[x509.Certificate, ...]] = []

    def run(self) -> list[tuple[x509.Certificate, ...]]:
        if _der(self.leaf) in self.root_ders:
            self.found.append((self.leaf,))
        self._extend([self.leaf])
        return self.found

    def _extend(self, current: list[x509.Certificate]) -> None:
        child = current[-1]
        for root in _parents_by_name(child, self.roots):
            if len(self.found) >= MAX_PATHS:
                self.truncated = True
                return
            if not _already_in(root, current) and self._verifies(child, root):
                self.found.append((*current, root))
        if len(current) + 2 > MAX_PATH_LENGTH:  # one more intermediate and a root would not fit
            return
        for parent in _parents_by_name(child, self.pool):
            if len(self.found) >= MAX_PATHS:
                self.truncated = True
                return
            if not _already_in(parent, current) and self._verifies(child, parent):
                self._extend([*current, parent])

    def _verifies(self, child: x509.Certificate, parent: x509.Certificate) -> bool:
        key = (id(child), id(parent))
        known = self.verified.get(key)
        if known is not None:
            return known
        if self.checks >= MAX_SIGNATURE_CHECKS:
            self.truncated = True
            return False
        self.checks += 1
        result = facts.signature_verifies(child, parent)
        self.verified[key] = result
        return result


def _parents_by_name(child: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """Certificates of `pool` whose subject is `child`'s issuer, those whose key identifier matches the
    child's authority key identifier first (RFC 5280 §4.2.1.1: a hint to find the issuer)."""
    named = [candidate for candidate in pool if candidate.subject == child.issuer]
    wanted = facts.authority_key_id(child)
    if wanted is None:
        return named
    return sorted(named, key=lambda candidate: facts.subject_key_id(candidate) != wanted)


def _already_in(candidate: x509.Certificate, current: Sequence[x509.Certificate]) -> bool:
    """Same subject and key as a certificate already on the path (Go's alreadyInChain): a cross-signed twin
    adds nothing but a loop."""
    return any(facts.same_entity(candidate, certificate) for certificate in current)


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.tbs_certificate_bytes + certificate.signature


def _unique(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[bytes] = set()
    unique = []
    for certificate in certificates:
        der = _der(certificate)
        if der not in seen:
            seen.add(der)
            unique.append(certificate)
    return unique


def explain(best: Path | None, paths: Sequence[Path], pool: Sequence[x509.Certificate],
            roots: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """One sentence per path that was not chosen, saying where it differs from the chosen one and why it lost."""
    everyone = [*pool, *roots]
    lines = []
    for path in paths:
        if path is best:
            continue
        through = _first_difference(path, best)
        label = f'"{facts.subject_of(through)}"' if through is not None else "the same certificates"
        if through is not None:
            weak_hash = facts.weak_signature(through)
            signed = f"{weak_hash} " if weak_hash else ""
            if _cross_signed(through, everyone):
                label = f"the {signed}cross-signed {label}"
            elif weak_hash:
                label = f"the {weak_hash}-signed {label}"
        if best is None:
            lines.append(f'the path through {label} to "{facts.subject_of(path.anchor)}" has weak links: '
                         + "; ".join(path.weak_links))
            continue
        size = len(path.certificates) - len(best.certificates)
        kind = "a longer path" if size > 0 else "a shorter path" if size < 0 else "another path of the same length"
        reason = _why_lost(path, best)
        lines.append(f'{kind} through {label} to "{facts.subject_of(path.anchor)}" was rejected: {reason}')
    return tuple(lines)


def _why_lost(path: Path, best: Path) -> str:
    if path.weak_links:
        return "; ".join(path.weak_links)
    if path.problems and not best.problems:
        return "; ".join(path.problems)
    if len(path.certificates) > len(best.certificates):
        return f"{len(path.certificates)} certificates where {len(best.certificates)} suffice"
    if _strength_key(path) > _strength_key(best):
        return "its signatures are weaker than the chosen path's"
    return (f"it stops working on {path.expires:%Y-%m-%d}, the chosen path on {best.expires:%Y-%m-%d}"
            if path.expires < best.expires else "an equal path was found first")


def _first_difference(path: Path, best: Path | None) -> x509.Certificate | None:
    chosen = {_der(certificate) for certificate in best.certificates} if best is not None else set()
    for certificate in path.certificates[1:]:
        if _der(certificate) not in chosen:
            return certificate
    return None


def _cross_signed(certificate: x509.Certificate, everyone: Sequence[x509.Certificate]) -> bool:
    """Another certificate holds the same subject and key under a different issuer."""
    return any(other.issuer != certificate.issuer and facts.same_entity(other, certificate) for other in everyone)


def missing_link(leaf: x509.Certificate, candidates: Sequence[x509.Certificate],
                 roots: Sequence[x509.Certificate]) -> str:
    """Why no path exists: walk up by issuer name until the walk stops, and say where and why."""
    everyone = [*_unique(candidates), *_unique(roots)]
    current = leaf
    seen = [leaf]
    for _ in range(MAX_PATH_LENGTH):
        named = [c for c in everyone if c.subject == current.issuer and not _already_in(c, seen)]
        subject = facts.subject_of(current)
        if not named:
            if facts.is_self_signed(current):
                return f'no path to a trusted root: it ends at "{subject}", which is not a trusted root'
            return (f'no path to a trusted root: no certificate for "{facts.issuer_of(current)}", the issuer of '
                    f'"{subject}", in the bundle or the roots (a missing intermediate)')
        signer = next((c for c in named if facts.signature_verifies(current, c)), None)
        if signer is None:
            return (f'no path to a trusted root: the certificate named "{facts.issuer_of(current)}" does not '
                    f'verify the signature on "{subject}" (a different key under the same name)')
        current = signer
        seen.append(current)
    return f"no path to a trusted root within {MAX_PATH_LENGTH} certificates"
