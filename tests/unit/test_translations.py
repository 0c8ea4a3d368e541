"""The gettext catalog: compiled files match their sources, every message has its Chinese, plurals are right."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from shared.i18n import LANGS, TRANSLATIONS_DIR, translations

REPO = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "lazy_gettext": None, "_l": None,
            "lazy_ngettext": (1, 2)}


def _method_map():
    """The [method: pattern] sections of babel.cfg, as extract_from_dir takes them."""
    pairs = []
    for line in (REPO / "babel.cfg").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("[") and ":" in line:
            method, pattern = line.strip("[]").split(":", 1)
            pairs.append((pattern.strip(), method.strip()))
    return pairs


def _catalog(lang):
    with open(TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", LANGS)
def test_each_compiled_catalog_is_its_po_file_compiled(lang):
    compiled = io.BytesIO()
    write_mo(compiled, _catalog(lang))
    on_disk = (TRANSLATIONS_DIR / lang / "LC_MESSAGES" / "messages.mo").read_bytes()
    assert compiled.getvalue() == on_disk, f"run `make translations`: {lang}'s messages.mo is stale"


def test_every_message_in_the_code_has_a_chinese_translation():
    found = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
            str(REPO), _method_map(), keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    assert "Alliance course catalog" in found  # the extraction itself works
    zh = _catalog("zh")
    missing = []
    for msgid in sorted(found):
        entry = zh.get(msgid)
        if entry is None:
            missing.append(msgid)
            continue
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(strings) or entry.fuzzy:
            missing.append(msgid)
    assert missing == [], f"messages without a Chinese translation (run `make translations`, then translate): {missing}"


@pytest.mark.parametrize("lang, n, words", [
    ("en", 1, "1 course"), ("en", 2, "2 courses"), ("en", 0, "0 courses"),
    ("zh", 1, "共 1 门课程"), ("zh", 5, "共 5 门课程"),
])
def test_plural_forms_are_right_in_both_languages(lang, n, words):
    assert translations(lang).ngettext("%(num)d course", "%(num)d courses", n) % {"num": n} == words


def test_an_unknown_language_falls_back_to_english():
    assert translations("fr").gettext("Alliance course catalog") == "Alliance course catalog"
    assert translations("zh").gettext("Alliance course catalog") == "联盟课程目录"
