"""How a service's validation messages read on a page: in the page's language.

The services answer in English (RFC 9457 problems, each error at its JSON
pointer), as an API should; a page puts each message at its field. This module
gives the page's words for the messages the services' schemas can produce:
their own (services/*/schemas.py, shared/fields.py) and marshmallow's, some with
numbers or choices in them. A message not listed here is shown as the service
wrote it; `tests/unit/test_api_messages.py` checks that the schemas' messages
are all listed.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _

from shared.i18n import N_

# messages without a variable part, as the services write them (and the msgids of their translations)
FIXED = frozenset({
    # marshmallow's
    N_("Missing data for required field."), N_("Field may not be null."), N_("Invalid value."),
    N_("Not a valid string."), N_("Not a valid integer."), N_("Not a valid number."), N_("Number too large."),
    N_("Not a valid boolean."), N_("Not a valid list."), N_("Invalid type."), N_("Not a valid date."),
    N_("Invalid input type."), N_("Unknown field."), N_("String does not match expected pattern."),
    N_("Not a valid email address."),
    # the project's fields (shared/fields.py) and schemas (services/*/schemas.py)
    N_("Not a UUID."), N_("Items must be unique."), N_("Items must be unique (ignoring case and spaces)."),
    N_("Not a number."), N_("Not an integer."), N_("Not a date in the form YYYY-MM-DD."),
    N_("Not an RFC 3339 date-time."), N_("The date-time needs a UTC offset, e.g. 2027-04-13T09:00:00+08:00."),
    N_("Not a BCP 47 language tag such as 'en', 'zh' or 'zh-Hans'."),
    N_("Text by language, e.g. {'en': '...', 'zh': '...'}."), N_("Keys and values must be strings."),
    N_("English text ('en') is required."), N_("At most 10 languages."),
    N_("An IANA time zone such as 'Asia/Shanghai'."), N_("A school id such as 'ecnu-cto'."),
    N_("1-32 letters, digits, '.', '_' or '-'."), N_("1-40 letters, digits, spaces, '_' or '-'."),
    N_("An ISCED-F 2013 field code of 2 to 4 digits, e.g. '0413'."),
    N_("An ISCED-F code has 2 to 4 digits, e.g. '0413'."), N_("A term such as '2027-spring'."),
    N_("A slot kind such as 'guest_lecture'."), N_("Text on one line, not blank."),
    N_("A phone number such as '+86 21 6223 3333'."), N_("Must not be blank."),
    N_("Must not be before starts_on."), N_("Must not be before applications_open."),
    N_("Another offering has this term."),
    N_("Must be after starts_at."), N_("Slot ids must be unique."),
    N_("A decline needs its reason for the requester."),
    N_("Give at least one of expertise, bio, availability."),
})


def _patterns():
    # marshmallow's messages with a number or a list in them: (pattern, the same words as a msgid)
    num = r"(-?[0-9]+(?:\.[0-9]+)?)"
    return (
        (re.compile(rf"^Length must be between {num} and {num}\.$"),
         lambda m: _("Length must be between %(min)s and %(max)s.", min=m[1], max=m[2])),
        (re.compile(rf"^Longer than maximum length {num}\.$"),
         lambda m: _("Longer than maximum length %(max)s.", max=m[1])),
        (re.compile(rf"^Shorter than minimum length {num}\.$"),
         lambda m: _("Shorter than minimum length %(min)s.", min=m[1])),
        (re.compile(rf"^Length must be {num}\.$"),
         lambda m: _("Length must be %(num)s.", num=m[1])),
        (re.compile(rf"^Must be greater than or equal to {num} and less than or equal to {num}\.$"),
         lambda m: _("Must be greater than or equal to %(min)s and less than or equal to %(max)s.", min=m[1],
                            max=m[2])),
        (re.compile(rf"^Must be greater than or equal to {num}\.$"),
         lambda m: _("Must be greater than or equal to %(min)s.", min=m[1])),
        (re.compile(rf"^Must be less than or equal to {num}\.$"),
         lambda m: _("Must be less than or equal to %(max)s.", max=m[1])),
        (re.compile(r"^Must be one of: (.+)\.$"),
         lambda m: _("Must be one of: %(choices)s.", choices=m[1])),
    )


_PATTERNS = _patterns()


def in_page_language(message: str) -> str:
    """A service's validation message in the page's language (as written when it is not a known one)."""
    if message in FIXED:
        return _(message)
    for pattern, words in _PATTERNS:
        match = pattern.match(message)
        if match:
            return words(match)
    return message


def problem_text(problem) -> str:
    """What a page says of a service's problem that has no field to sit at (a list that could not be read):
    in the page's language, by its status, instead of the service's English title."""
    status = getattr(problem, "status", 500)
    if status in (502, 503, 504):
        return _("it is not answering right now. Try again in a moment.")
    if status in (401, 403):
        return _("your sign-in does not allow this. Sign in again, or ask your school's coordinators.")
    if status == 404:
        return _("it does not know what was asked for (any more).")
    if status == 400:
        return _("it did not understand what was asked. Reload the page without the filters and try again.")
    return _("it answered with an error (%(status)s). Try again in a moment.", status=status)
