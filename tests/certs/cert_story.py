"""The 2015 hierarchy the rsp.certs tests share (the `story` fixture of conftest.py builds it once per session).

The 2015 case: Root A (SHA-256, trusted) signed Intermediate 1; the same Intermediate 1 (subject and
key) was also cross-signed with SHA-1 by Old Root B (trusted too), and Root A itself was cross-signed with
SHA-1 by Old Root B. NSS before 3.17.4 could build leaf <- Intermediate 1' <- Old Root B, or the longer
leaf <- Intermediate 1 <- Root A' <- Old Root B, and flag the site; rsp must pick leaf <- Intermediate 1 <- Root A.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cert_pki import Issued, ec_key, issue, root, rsa_key

UTC = datetime.UTC
# The moment of the story: mid-2015, when Chrome's SHA-1 sunset was in force.
AT = datetime.datetime(2015, 6, 1, tzinfo=UTC)
LEAF_NOT_AFTER = datetime.datetime(2017, 3, 1, tzinfo=UTC)
HOST = "www.example.test"


@dataclass(frozen=True)
class Story:
    root_a: Issued
    root_b: Issued
    i1: Issued          # Intermediate 1 by Root A, SHA-256
    i1_cross: Issued    # Intermediate 1 (same subject, same key) by Old Root B, SHA-1
    a_cross: Issued     # Root A (same subject, same key) by Old Root B, SHA-1
    leaf: Issued        # www.example.test by Intermediate 1, SHA-256, expires 2017


def build_story() -> Story:
    root_a = root("Root A", ec_key("root-a"))
    root_b = root("Old Root B", rsa_key("root-b"))
    i1 = issue("Intermediate 1", ec_key("i1"), issuer=root_a, ca=True)
    i1_cross = issue("Intermediate 1", ec_key("i1"), issuer=root_b, ca=True, digest="sha1")
    a_cross = issue("Root A", ec_key("root-a"), issuer=root_b, ca=True, digest="sha1")
    leaf = issue(HOST, ec_key("leaf"), issuer=i1, ca=False, dns_names=(HOST, "*.example.test"),
                 not_before=datetime.datetime(2015, 3, 1, tzinfo=UTC), not_after=LEAF_NOT_AFTER)
    return Story(root_a, root_b, i1, i1_cross, a_cross, leaf)
