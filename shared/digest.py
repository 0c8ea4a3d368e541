"""The digest a partner compares with its copy: count and SHA-256 of the (id, version) pairs it may see.

The same function runs on both sides: the source over its change log
(`ChangeLog.digest`), the catalog over the entries it holds of that source.
"""

from __future__ import annotations

import hashlib


def digest_of(pairs) -> dict:
    """{"count", "sha256"} over the sorted (id, version) pairs, one 'id:version' line each."""
    h = hashlib.sha256()
    count = 0
    for entity_id, version in sorted(pairs):
        h.update(f"{entity_id}:{version}\n".encode("utf-8"))
        count += 1
    return {"count": count, "sha256": h.hexdigest()}
