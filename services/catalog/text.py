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
from rapidfuzz.distance import OSA

from shared.config import REPO_ROOT

# the Chinese characters (CJK ideographs, extension A, compatibility ideographs): a character class's ranges
_CJK_RANGES = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK = re.compile(f"[{_CJK_RANGES}]+")
# a word of the page's text, for highlighting: a run of Chinese characters, or of other letters and digits (as
# the index cuts them: `segmented` puts spaces around each Chinese run)
_LATIN_CHAR = rf"[^\W_{_CJK_RANGES}]"
LATIN = re.compile(_LATIN_CHAR + "+")
WORD = re.compile(CJK.pattern + "|" + LATIN.pattern)
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


# a word of a text that a query word's typo may be: a query word has at least 5 letters and no digit, and its
# typos take at most one letter away per 4 letters, so a word of 4 letters or more, no digit, not Chinese
_TYPO_WORD = re.compile(rf"[^\W\d_{_CJK_RANGES}]{{4,}}")


def plain_words(texts: list[str]) -> set[str]:
    """The words of `texts` as the unstemmed fields cut them (one pass of the analyzer)."""
    return set(_PLAIN.analyze(" ".join(texts)))


def is_typo_word(word: str) -> bool:
    """Whether a word of a text (from `plain_words`) may be what a typo of a query word finds."""
    return _TYPO_WORD.fullmatch(word) is not None


def allowed_typos(word: str) -> int:
    """Meilisearch's rule: 0 typos below 5 letters, 1 from 5, 2 from 9; none in a word with a digit (codes)."""
    if any(c.isdigit() for c in word) or CJK.search(word):
        return 0
    return 2 if len(word) >= 9 else 1 if len(word) >= 5 else 0


class QueryWord:
    """One word of a query: what it matches exactly (its stem), with typos (its plain form), or in Chinese.

    `variants`: the words of the index within its typos that its stem does not match already (the search index
    looks them up in its vocabulary and sets them)."""

    def __init__(self, text: str, chinese: bool):
        self.text = text
        self.chinese = chinese
        self.stem = text if chinese else stem(text)
        self.typos = 0 if chinese else allowed_typos(text)
        self.variants: tuple[str, ...] = ()

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
    """Levenshtein distance with adjacent transpositions counted as one (optimal string alignment, as tantivy's
    typo automata count), `limit + 1` when above `limit`."""
    return OSA.distance(a, b, score_cutoff=limit)


def matches(token: str, word: QueryWord) -> bool:
    """Whether a word of a text (lower-cased, not Chinese) is what `word` found: same stem, or within its typos (a
    word the vocabulary holds: `is_typo_word`)."""
    if token == word.text or _stem_cached(token) == word.stem:
        return True
    return word.typos > 0 and distance(token, word.text, word.typos) <= word.typos and is_typo_word(token)


class Highlighter:
    """Puts the words a query matched in <mark> in the texts of one answer, HTML-escaped: safe in a page as they are
    (services/catalog/pages.py marks them as such).

    The texts are worked on as one (joined by a control character): each distinct word is asked once whether it
    matched, the Latin words that did are marked by one regular expression, a Chinese query word inside the
    Chinese runs that hold it; a text without a match is only escaped.
    """

    def __init__(self, words: list[QueryWord]):
        self.chinese = [w.text for w in words if w.chinese]
        self.latin = [w for w in words if not w.chinese]

    def __call__(self, texts: list[str]) -> list[str]:
        """The HTML of each of `texts`, in order."""
        if not texts:
            return []
        joined = _SEP.join(texts)
        if any(c in joined for c in _CONTROLS[1:]) or joined.count(_SEP) != len(texts) - 1:
            # control characters, which a course's text cannot hold, are what joins and marks them: removed
            joined = _SEP.join(t.translate(_NO_CONTROLS) for t in texts)
        hits = set()
        if self.latin:
            for token in set(LATIN.findall(joined)):
                low = token.lower()
                if any(matches(low, w) for w in self.latin):
                    hits.add(token)
        if self.chinese and CJK.search(joined):
            marked = self._with_chinese(joined, hits)
        elif hits:
            parts = _marker(frozenset(hits)).split(joined)
            parts[1::2] = [_OPEN + hit + _CLOSE for hit in parts[1::2]]
            marked = "".join(parts)
        else:
            marked = joined
        escaped = html.escape(marked)
        if marked is not joined:
            escaped = escaped.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>")
        # every piece is escaped; only the <mark> tags are markup
        return escaped.split(_SEP)

    def _with_chinese(self, text: str, hits: set[str]) -> str:
        out, pos = [], 0
        for m in WORD.finditer(text):
            token = m.group()
            if token in hits:
                out.append(text[pos:m.start()])
                out.append(_OPEN + token + _CLOSE)
                pos = m.end()
            elif token[0] >= "\u3400" and CJK.match(token):
                spans = _chinese_spans(token, self.chinese)
                if not spans:
                    continue
                out.append(text[pos:m.start()])
                inner = 0
                for start, end in spans:
                    out.append(token[inner:start])
                    out.append(_OPEN + token[start:end] + _CLOSE)
                    inner = end
                out.append(token[inner:])
                pos = m.end()
        out.append(text[pos:])
        return "".join(out)


_SEP, _OPEN, _CLOSE = "\x00", "\x01", "\x02"
_CONTROLS = _SEP + _OPEN + _CLOSE
_NO_CONTROLS = str.maketrans("", "", _CONTROLS)


@lru_cache(maxsize=512)
def _marker(hits: frozenset[str]) -> re.Pattern:
    """The whole Latin words `hits` (as LATIN cuts a text into words), in a group: `split` keeps them."""
    alternatives = "|".join(re.escape(h) for h in sorted(hits, key=len, reverse=True))
    return re.compile(f"(?<!{_LATIN_CHAR})({alternatives})(?!{_LATIN_CHAR})")


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
