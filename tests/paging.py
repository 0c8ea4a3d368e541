"""Following `next` links through a list endpoint in tests."""

from __future__ import annotations


def all_pages(client, headers, path: str, query: str, limit: int) -> list[dict]:
    """Every item of `path?query`, `limit` per page, checking each page on the way (bounded)."""
    items, url, pages = [], f"{path}?{query}&limit={limit}" if query else f"{path}?limit={limit}", 0
    while url:
        response = client.get(url.replace("http://localhost", ""), headers=headers)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        url = body["next"]
        pages += 1
        assert pages < 1000, "the next links never end"
    return items
