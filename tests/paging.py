"""Following `next` links through a list endpoint in tests, and checking that pages neither skip nor repeat."""

from __future__ import annotations

from typing import Callable
from urllib.parse import urlsplit

# times within one second, several of them equal: the embedded server compares date-time text to the
# second, so a page boundary inside this second is where a cursor over the text would skip or repeat
TIES_IN_ONE_SECOND = [f"2027-01-04T08:30:15.{ms:03d}Z" for ms in (0, 0, 0, 1, 1, 7, 250, 250, 251, 998, 999, 999)]


def all_pages(client, headers, path: str, query: str, limit: int) -> list[dict]:
    """Every item of `path?query`, `limit` per page, checking each page on the way (bounded)."""
    items, url, pages = [], f"{path}?{query}&limit={limit}" if query else f"{path}?limit={limit}", 0
    while url:
        response = client.get(url.replace("http://localhost", ""), headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert set(body) >= {"items", "next"}, body
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        url = body["next"]
        pages += 1
        assert pages < 1000, "the next links never end"
        if url:
            assert urlsplit(url).path == path, url
    return items


def fixed_clock(times: list[str]) -> Callable[[], str]:
    """A clock that returns `times` in turn (then the last one again): many writes in one second, on purpose."""
    given = iter(times)
    last = [times[-1]]

    def now() -> str:
        last[0] = next(given, last[0])
        return last[0]

    return now


def in_order(items: list[dict], key: Callable[[dict], object], descending: bool,
             reverse_ties: bool = False) -> list[dict]:
    """`items` in the order a keyset page promises: by `key` (ascending or descending), then by id ascending
    (with `reverse_ties`, a descending sort is the exact reverse of the ascending one: ties by id descending,
    as the catalog's search index pages)."""
    if descending and reverse_ties:
        return sorted(items, key=lambda i: (key(i), i["id"]), reverse=True)
    # a stable sort keeps the id order among equal keys, also when reversed
    return sorted(sorted(items, key=lambda i: i["id"]), key=key, reverse=descending)


def assert_pages_list_each_once_in_order(client, headers, path: str, ids, sorts: dict[str, Callable[[dict], object]],
                                         query: str = "", limit: int = 2, reverse_ties: bool = False) -> None:
    """For every sort, ascending and descending: the pages of `path` hold each of `ids` once, in order
    (`reverse_ties`: see `in_order`).

    `sorts` maps the API's sort names to the value of an item that sort orders by.
    """
    expected = sorted(ids)
    for name, key in sorts.items():
        for sort in (name, f"-{name}"):
            items = all_pages(client, headers, path, f"{query}&sort={sort}" if query else f"sort={sort}", limit)
            got = [item["id"] for item in items]
            assert sorted(got) == expected, f"sort={sort}: rows skipped or repeated across pages"
            assert got == [i["id"] for i in in_order(items, key, sort.startswith("-"), reverse_ties)], \
                f"sort={sort}: out of order"
