"""How the catalog's search marks the words a query matched in an answer's texts (services/catalog/text.py)."""

from __future__ import annotations

from services.catalog.text import Highlighter, distance, query_words


def marked(query: str, texts: list[str]) -> list[str]:
    return Highlighter(query_words(query))(texts)


def test_each_text_of_an_answer_comes_back_in_its_place_escaped_with_its_matches_marked():
    texts = ["Innovation management", "R&D <b>strategy</b>", "", "A course on innovations.", "Supply chains"]
    assert marked("innovation", texts) == [
        "<mark>Innovation</mark> management", "R&amp;D &lt;b&gt;strategy&lt;/b&gt;", "",
        "A course on <mark>innovations</mark>.", "Supply chains"]


def test_typos_stems_and_whole_words_only():
    assert marked("inovation planing", ["Innovation and planning", "innovative planners", "planet"]) == [
        "<mark>Innovation</mark> and <mark>planning</mark>", "innovative planners", "planet"]
    # a word with a digit is no typo's match (the index's vocabulary leaves it out), so it is not marked either
    assert marked("strategy", ["strategi3s strateg strategy1"]) == ["strategi3s <mark>strateg</mark> strategy1"]
    # a word inside a longer one is not marked, nor a part of a code
    assert marked("chain", ["Supply-chain", "chains", "blockchain", "CHAIN-101"]) == [
        "Supply-<mark>chain</mark>", "<mark>chains</mark>", "blockchain", "<mark>CHAIN</mark>-101"]


def test_chinese_words_are_marked_inside_their_runs_and_latin_words_beside_them():
    assert marked("转型 strategy", ["数字化转型与企业架构", "转型strategy", "Strategy 战略"]) == [
        "数字化<mark>转型</mark>与企业架构", "<mark>转型</mark><mark>strategy</mark>", "<mark>Strategy</mark> 战略"]
    # a Latin word written right after Chinese characters is a word of its own, as the index cuts it
    assert marked("abc", ["数字abc"]) == ["数字<mark>abc</mark>"]


def test_the_control_characters_that_join_and_mark_the_texts_cannot_come_from_a_text():
    texts = ["one\x00two innovation", "\x01innovation\x02", "three"]
    assert marked("innovation", texts) == ["onetwo <mark>innovation</mark>", "<mark>innovation</mark>", "three"]
    assert marked("three", texts) == ["onetwo innovation", "innovation", "<mark>three</mark>"]
    assert marked("three", []) == []


def test_the_typo_distance_counts_a_swap_of_two_letters_as_one_and_stops_above_its_limit():
    assert distance("inovation", "innovation", 2) == 1
    assert distance("stratgey", "strategy", 1) == 1
    assert distance("operations", "innovation", 2) == 3
    assert distance("abc", "abc", 0) == 0
