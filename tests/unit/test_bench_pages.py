"""bench/pages.py's page weight: which files of a page it counts."""

from bench.pages import assets_of

PAGE = """<!doctype html><html><head>
<link rel="stylesheet" href="/static/catalog.css"><link rel="icon" href="/static/favicon.png">
<link rel="preload stylesheet" href="/static/extra.css">
<script src="/static/frontdoor.js" defer></script><script>inline()</script>
</head><body><img src="/static/logo.png"><script src="/static/frontdoor.js"></script></body></html>"""


def test_page_weight_counts_each_stylesheet_and_script_once_and_no_image_or_icon():
    assert assets_of(PAGE) == ["/static/catalog.css", "/static/extra.css", "/static/frontdoor.js"]
