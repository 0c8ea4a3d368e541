"""The digest a partner compares with its copy: count and an order-independent hash of the (id, version) pairs.

The same function runs on both sides: the source over its change log
(`ChangeLog.digest`, kept current as the relay confirms entries), the catalog
over the entries it holds of that source.

The hash is the sum, lane by lane, of the SHA-256 of each 'id:version' pair cut
into eight 32-bit lanes, each lane taken modulo 2**32. A sum does not depend on
order, so it is kept as entities change: adding a pair adds its lanes,
removing one subtracts them, in one atomic `$inc` of one document (every lane
stays far below 2**63 on any realistic catalog). Two sides that hold the same
pairs agree, whatever order they saw them in.
"""

from __future__ import annotations

import hashlib

LANES = 8
LANE = 2**32


def pair_lanes(entity_id: str, version: int) -> list[int]:
    """The eight 32-bit lanes of SHA-256('id:version')."""
    raw = hashlib.sha256(f"{entity_id}:{version}".encode("utf-8")).digest()
    return [int.from_bytes(raw[i * 4:(i + 1) * 4], "big") for i in range(LANES)]


def hex_of(lanes: list[int]) -> str:
    """The digest's hash text: each lane modulo 2**32, as eight-digit hex, in order."""
    return "".join(f"{lane % LANE:08x}" for lane in lanes)


def lanes_of(pairs) -> tuple[int, list[int]]:
    """(count, lane sums) over (id, version) pairs, in any order: what a kept digest stores."""
    total = [0] * LANES
    count = 0
    for entity_id, version in pairs:
        for i, lane in enumerate(pair_lanes(entity_id, version)):
            total[i] += lane
        count += 1
    return count, total


def digest_of(pairs) -> dict:
    """{"count", "sha256"} over (id, version) pairs, in any order."""
    count, total = lanes_of(pairs)
    return {"count": count, "sha256": hex_of(total)}
