"""The search index's sort keys (services/catalog/search_index.py): their order is the page order."""

from __future__ import annotations

import random
import uuid

from services.catalog.search_index import _key_bytes, _rank, number_bytes


def test_numbers_keep_their_order_as_bytes_of_any_length():
    rng = random.Random(7)
    numbers = sorted({0, 1, -1, 255, 256, -255, -256, -(2**63), 2**63 - 1,
                      *(rng.randint(-(2**63), 2**63 - 1) for _ in range(2000)),
                      *(rng.randint(-70_000, 70_000) for _ in range(2000))})
    encoded = [number_bytes(n) for n in numbers]
    assert sorted(encoded) == encoded and len(set(encoded)) == len(encoded)
    assert len(number_bytes(3000)) == 3  # 3.0 credits: room left in the rank for five bytes of the id


def test_keys_order_by_value_then_id_and_their_ranks_never_disagree():
    rng = random.Random(11)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(600)]
    credits = [(rng.choice([None, 0, 1.5, 3, 3, 3, 30, -2]), i) for i in ids]
    titles = [(rng.choice(["", "ab", "abc", "Innovation", "Innovation management", "创新"]), i) for i in ids]
    for name, rows, value in (("credits", credits, lambda v: -float("inf") if v is None else v),
                              ("title", titles, lambda v: v.encode())):
        keyed = sorted((_key_bytes(name, v, i), v, i) for v, i in rows)
        assert [(value(v), uuid.UUID(i).bytes) for _, v, i in keyed] == sorted(
            (value(v), uuid.UUID(i).bytes) for v, i in rows)
        ranks = [_rank(key) for key, _, _ in keyed]
        assert ranks == sorted(ranks)
