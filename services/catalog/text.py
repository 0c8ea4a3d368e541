"""How the catalog's search reads text: words, stems, Chinese segmentation and typo rules. Pure functions.

The index (services/catalog/search_index.py) and the queries analyse text with
these same functions, so a word is cut the same way on both sides:

- Latin-script text is split into words, lower-cased and stemmed (English
  Snowball) by tantivy's own analyzers, built here.
- Chinese runs are cut into words with jieba (its search mode at index time, so
  the parts of long words are words too), and also kept as characters and
  character bigrams: a part of a word that jieba does not cut out still matches.
- Typos are allowed as Meilisearch does: none below 5 letters, one from 5, two
  from 9, never in a word with a digit (course codes).
"""

from __future__ import annotations

import html
import logging
import os
import re
from functools import lru_cache
from pathlib import Path

import jieba
import tantivy
from markupsafe import Markup

from shared.config import REPO_ROOT

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
# a word of the page's text, for highlighting: letters and digits, or a run of Chinese characters
WORD = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[^\W_]+")
STEMMED = "catalog_stem"
PLAIN = "catalog_plain"
MAX_QUERY_WORDS = 12


def stem_analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.remove_long(40)).filter(tantivy.Filter.stemmer("english")).build())


def plain_analyzer() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.remove_long(40)).build())


_STEM = stem_analyzer()
_PLAIN = plain_analyzer()


def use_jieba_cache(var_dir: Path) -> None:
    """Keep jieba's prefix dictionary cache under the project's var/ instead of /tmp (built once, 0.5 s)."""
    jieba.setLogLevel(logging.WARNING)
    try:
        var_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    if os.access(var_dir, os.W_OK):
        # else (a read-only install, as the image runs): jieba's default, the temporary folder
        jieba.dt.tmp_dir = str(var_dir)


use_jieba_cache(REPO_ROOT / "var" / "jieba")


def segmented(text: str) -> str:
    """`text` with every Chinese run cut into words (search mode), separated by spaces."""
    return CJK.sub(lambda m: " " + " ".join(jieba.cut_for_search(m.group(0))) + " ", text)


def grams(text: str) -> str:
    """The characters and character bigrams of the Chinese runs of `text`, separated by spaces."""
    out = []
    for run in CJK.findall(text):
        out.extend(run)
        out.extend(run[i:i + 2] for i in range(len(run) - 1))
    return " ".join(out)


def run_grams(word: str) -> list[str]:
    """What a Chinese query word must all match in the grams fields: its bigrams (its character when alone)."""
    return [word] if len(word) == 1 else [word[i:i + 2] for i in range(len(word) - 1)]


def stem(word: str) -> str:
    tokens = _STEM.analyze(word)
    return tokens[0] if tokens else word.lower()


def allowed_typos(word: str) -> int:
    """Meilisearch's rule: 0 typos below 5 letters, 1 from 5, 2 from 9; none in a word with a digit (codes)."""
    if any(c.isdigit() for c in word) or CJK.search(word):
        return 0
    return 2 if len(word) >= 9 else 1 if len(word) >= 5 else 0


class QueryWord:
    """One word of a query: what it matches exactly (its stem), with typos (its plain form), or in Chinese."""

    def __init__(self, text: str, chinese: bool):
        self.text = text
        self.chinese = chinese
        self.stem = text if chinese else stem(text)
        self.typos = 0 if chinese else allowed_typos(text)

    def __repr__(self) -> str:
        return f"QueryWord({self.text!r})"


def query_words(q: str) -> list[QueryWord]:
    """The words of a free-text query, in order: Chinese runs cut with jieba, the rest by tantivy's tokenizer."""
    words: list[QueryWord] = []
    pos = 0
    for m in CJK.finditer(q):
        words.extend(QueryWord(w, False) for w in _PLAIN.analyze(q[pos:m.start()]))
        words.extend(QueryWord(w, True) for w in jieba.lcut(m.group(0)) if w.strip())
        pos = m.end()
    words.extend(QueryWord(w, False) for w in _PLAIN.analyze(q[pos:]))
    seen, unique = set(), []
    for w in words:
        if w.text not in seen:
            seen.add(w.text)
            unique.append(w)
    return unique[:MAX_QUERY_WORDS]


@lru_cache(maxsize=4096)
def _stem_cached(word: str) -> str:
    return stem(word)


def distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance with adjacent transpositions counted as one, stopping above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2, prev = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb))
            if prev2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def matches(token: str, word: QueryWord) -> bool:
    """Whether a word of a text (lower-cased, not Chinese) is what `word` found: same stem, or within its typos."""
    if token == word.text or _stem_cached(token) == word.stem:
        return True
    return word.typos > 0 and distance(token, word.text, word.typos) <= word.typos


def highlight(text: str, words: list[QueryWord], seen: dict | None = None) -> Markup:
    """`text` HTML-escaped, with the words a query matched in <mark>; safe to put in a page as it is.

    `seen` caches, across the texts of one answer, whether a token matched.
    """
    chinese = [w.text for w in words if w.chinese]
    latin = [w for w in words if not w.chinese]
    seen = {} if seen is None else seen
    escape = html.escape
    out, pos = [], 0
    for m in WORD.finditer(text):
        token = m.group()
        if token[0] >= "\u3400" and CJK.match(token):
            spans = _chinese_spans(token, chinese) if chinese else None
            if not spans:
                continue
            out.append(escape(text[pos:m.start()]))
            inner = 0
            for start, end in spans:
                out.append(escape(token[inner:start]))
                out.append(f"<mark>{escape(token[start:end])}</mark>")
                inner = end
            out.append(escape(token[inner:]))
            pos = m.end()
        elif latin:
            low = token.lower()
            hit = seen.get(low)
            if hit is None:
                hit = seen[low] = any(matches(low, w) for w in latin)
            if hit:
                out.append(escape(text[pos:m.start()]))
                out.append(f"<mark>{escape(token)}</mark>")
                pos = m.end()
    if not pos:
        return Markup(escape(text))
    out.append(escape(text[pos:]))
    # every piece above is escaped; only the <mark> tags are markup
    return Markup("".join(out))


def warm_up() -> None:
    """Load jieba's dictionary now (0.5-2 s), not in the first request that has Chinese in it."""
    jieba.initialize()


def _chinese_spans(run: str, words: list[str]) -> list[tuple[int, int]]:
    """Non-overlapping spans of `run` where any of `words` occurs, longest words first."""
    taken = [False] * len(run)
    spans = []
    for word in sorted(words, key=len, reverse=True):
        start = run.find(word)
        while start >= 0:
            end = start + len(word)
            if not any(taken[start:end]):
                spans.append((start, end))
                for i in range(start, end):
                    taken[i] = True
            start = run.find(word, end)
    return sorted(spans)
