"""How the catalog's values are shown in a language: language maps, coded values, places left.

The words themselves live in the gettext catalog (shared/translations, see
shared/i18n.py); templates use `_()` / `ngettext()` directly. This module
names the coded values the pages show (delivery modes, slot kinds, filters,
sort orders) so that their labels are extracted into that catalog.
"""

from __future__ import annotations

from shared.i18n import DEFAULT_LANG, N_, translations


# coded values -> their English label (the msgid)
VALUE_LABELS = {
    "in_person": N_("In person"), "online": N_("Online"), "hybrid": N_("Hybrid"),
    "guest_lecture": N_("Guest lecture"), "co_teaching": N_("Co-teaching"), "workshop": N_("Workshop"),
    "seminar": N_("Seminar"), "en": N_("English"), "zh": N_("Chinese"),
}
FILTER_LABELS = {
    "school": N_("School"), "programme": N_("Programme"), "language": N_("Teaching language"),
    "delivery": N_("Delivery"), "term": N_("Term"), "eqf_level": N_("EQF level"), "isced_f": N_("ISCED-F field"),
}
SORT_LABELS = {
    "code": N_("Code"), "title": N_("Title"), "credits": N_("Credits (low to high)"),
    "-credits": N_("Credits (high to low)"), "school": N_("School"), "-updated": N_("Recently updated"),
}


def text(value, lang: str) -> str:
    """The text of a language map in `lang`, else English, else any language."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    for key in (lang, "zh-Hans" if lang == "zh" else lang, DEFAULT_LANG):
        if value.get(key):
            return value[key]
    return next(iter(value.values()), "")


def places(lang: str, left: int | None, capacity: int | None) -> str:
    """How full a slot is, in words: "3 places left", "1 place left", "Full"; its size when the host does not say."""
    tr = translations(lang)
    if left is None:
        if capacity is None:
            return tr.gettext("Places not stated")
        return tr.ngettext("%(num)d place", "%(num)d places", capacity) % {"num": capacity}
    if left == 0:
        return tr.gettext("Full")
    return tr.ngettext("%(num)d place left", "%(num)d places left", left) % {"num": left}


def value_label(lang: str, value) -> str:
    """A coded value (delivery mode, slot kind, language tag) in words, when the page knows it."""
    msgid = VALUE_LABELS.get(str(value))
    return translations(lang).gettext(msgid) if msgid else str(value).replace("_", " ")


def label_of(table: dict, lang: str, key: str) -> str:
    """The translated label of `key` in one of the tables above (the key itself when unknown)."""
    msgid = table.get(key)
    return translations(lang).gettext(msgid) if msgid else key
