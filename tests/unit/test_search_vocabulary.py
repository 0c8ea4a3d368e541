"""Which words of a course the search index's vocabulary learns, for typos to find (services/catalog/text.py)."""

from __future__ import annotations

from services.catalog.text import allowed_typos, is_typo_word, plain_words


def typo_words(texts: list[str]) -> set[str]:
    """What the vocabulary learns of a course with these texts (SearchIndex._add)."""
    return {w for w in plain_words(texts) if is_typo_word(w)}


def test_the_vocabulary_holds_the_words_a_typo_may_find_as_the_unstemmed_fields_cut_them():
    texts = ["Supply-Chain Strategy 2027", "数字化转型 and the R&D lab", "Über Innovationsmanagement"]
    # lower-cased, unstemmed; 4 letters at least (a query word of 5 letters with one letter taken away)
    assert typo_words(texts) == {"supply", "chain", "strategy", "über", "innovationsmanagement"}


def test_words_with_a_digit_and_chinese_words_are_never_a_typo_s_match():
    # a query word with a digit has no typos (a course code); nor is a text's word with one found by a typo
    assert typo_words(["MGT2001 B-00012 covid19 planning", "创新管理"]) == {"planning"}


def test_the_vocabulary_reaches_as_short_a_word_as_the_shortest_query_word_with_a_typo_can_be():
    # the vocabulary's least length follows the typo rule: change one, and this fails until the other follows
    shortest = min(n for n in range(1, 20) if allowed_typos("x" * n))
    reach = shortest - allowed_typos("x" * shortest)
    assert typo_words(["y" * reach]) == {"y" * reach}
    assert typo_words(["y" * (reach - 1)]) == set()
