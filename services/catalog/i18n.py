"""How the catalog's values are shown in a language: language maps, coded values, places left, slot times.

The words themselves live in the gettext catalog (shared/translations, see
shared/i18n.py); templates use `_()` / `ngettext()` directly. This module
names the coded values the pages show (delivery modes, slot kinds, filters,
sort orders) so that their labels are extracted into that catalog.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


def moment(text: str | None) -> datetime | None:
    """An RFC 3339 date-time as a datetime; None for none or one that does not parse."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")) if text else None
    except ValueError:
        return None


def in_zone(when: datetime, time_zone: str | None) -> tuple[datetime, str]:
    """`when` in the IANA zone `time_zone` and that zone's name; as given and "" for no zone or an unknown one."""
    if time_zone:
        try:
            return when.astimezone(ZoneInfo(time_zone)), time_zone
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return when, ""


def slot_time(slot: dict | None, time_zone: str | None) -> str:
    """A slot's date and times in the visit's time zone, named: "2027-04-13 09:00–11:00 (Asia/Shanghai)"."""
    if not slot:
        return ""
    starts, ends = moment(slot.get("starts_at")), moment(slot.get("ends_at"))
    if starts is None or ends is None:
        return ""
    starts, zone_name = in_zone(starts, time_zone)
    ends, _ = in_zone(ends, time_zone)
    if not zone_name:
        offset = starts.strftime("%z")
        zone_name = f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"
    end = ends.strftime("%H:%M") if ends.date() == starts.date() else ends.strftime("%Y-%m-%d %H:%M")
    return f"{starts.strftime('%Y-%m-%d %H:%M')}–{end} ({zone_name})"
