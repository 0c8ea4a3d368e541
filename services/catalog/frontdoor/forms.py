"""What the coordinators' forms share: a posted form to an API body, and an API problem back to the form's fields.

A form keeps what the person typed, as text (`Form.values`), so that a page
refused by the service is shown again with every value as it was entered and
each message at its field. A value that cannot be converted (a credit of
"abc") is sent as typed: the service says what is wrong with it, at its JSON
pointer, like any other refusal.

Field names in the forms: a language map is `<field>_en` / `<field>_zh`; a list
of short items is one text field, comma- or line-separated; a list of rows
(offerings, availability windows, slots) is `<field>-<i>-<name>`, with a blank
row or two to add one; a list of language maps is two textareas (`_en`, `_zh`),
one item a line.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from flask import abort, request

from services.catalog.frontdoor.api_messages import in_page_language
from services.catalog.frontdoor.services_client import ServiceProblem

LANGS = ("en", "zh")
# rows offered blank below those a record has, so that one can be added without script
BLANK_ROWS = 2
# problem types whose pointer the service does not give, and the field they are about
TYPE_FIELDS = {"course-code-taken": "code", "faculty-conflict": "email"}


@dataclass
class Form:
    """A form's values (as typed), its rows and its errors by field key (`title`, `offerings.0.ends_on`)."""

    values: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    problem: ServiceProblem | None = None

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def error(self, key: str) -> str:
        """The message for a field: its own, or one about a part of it (`title` for `/title/en`)."""
        if key in self.errors:
            return self.errors[key]
        for k, message in self.errors.items():
            if k.startswith(key + "."):
                return message
        return ""

    def exact(self, key: str) -> str:
        return self.errors.get(key, "")

    def unplaced(self, placed: set[str]) -> list[tuple[str, str]]:
        """Errors about no field the form shows (shown at the top, so nothing is hidden)."""
        out = []
        for key, message in self.errors.items():
            if not any(key == p or key.startswith(p + ".") for p in placed):
                out.append((key, message))
        return out


def errors_of(problem: ServiceProblem) -> dict[str, str]:
    """A problem's messages by field key: each JSON pointer with its slashes as dots (`/slots/0/ends_at` ->
    `slots.0.ends_at`); a problem the service gives no pointer for is put at the field it is about."""
    out: dict[str, str] = {}
    for error in problem.errors:
        pointer = str(error.get("pointer") or "").strip("/")
        key = pointer.replace("/", ".") if pointer else "_form"
        out.setdefault(key, in_page_language(str(error.get("detail") or problem.title)))
    slug = problem.type.rsplit(":", 1)[-1]
    if slug in TYPE_FIELDS and TYPE_FIELDS[slug] not in out:
        out[TYPE_FIELDS[slug]] = problem.detail or problem.title
    # services_client's view (by the pointer's first segment) is `Form.error(name)`: a field's message is its
    # own or the first about a part of it, so a pointer the form has no finer field for still meets a field
    return out


def new_idempotency_key() -> str:
    """A key rendered into a create form: submitting the same form twice creates one record."""
    return str(uuid.uuid4())


def posted() -> dict:
    """The posted form as {name: text}, without the CSRF token."""
    return {k: v for k, v in request.form.items() if k != "csrf_token"}


def text(values: dict, name: str) -> str:
    """A typed value, trimmed, its line breaks as one character each (a browser sends CRLF, and its
    maxlength counts one)."""
    return (values.get(name) or "").replace("\r\n", "\n").strip()


def number(raw: str, integer: bool = False):
    """A number typed in a field; as typed when it is not one (the service then says so at the field)."""
    try:
        return int(raw) if integer else (int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw))
    except ValueError:
        return raw


def put_text(body: dict, values: dict, name: str, required: bool = False) -> None:
    value = text(values, name)
    if value or required:
        body[name] = value


def put_number(body: dict, values: dict, name: str, integer: bool = False, required: bool = False) -> None:
    value = text(values, name)
    if value:
        body[name] = number(value, integer)
    elif required:
        body[name] = None


def lang_map(values: dict, name: str) -> dict:
    """`<name>_en`, `<name>_zh` -> {"en": ..., "zh": ...}, leaving out a language left blank."""
    return {lang: text(values, f"{name}_{lang}") for lang in LANGS if text(values, f"{name}_{lang}")}


def items(raw: str) -> list[str]:
    """A list typed in one field: separated by commas or lines (Chinese commas too)."""
    return [part.strip() for part in re.split(r"[,，、\n]", raw or "") if part.strip()]


def lines(raw: str) -> list[str]:
    return [line.strip() for line in (raw or "").splitlines() if line.strip()]


def lang_map_list(values: dict, name: str) -> list[dict]:
    """Two textareas, one item a line, paired by line: [{"en": line 1, "zh": line 1}, ...]."""
    en, zh = lines(values.get(f"{name}_en", "")), lines(values.get(f"{name}_zh", ""))
    out = []
    for index in range(max(len(en), len(zh))):
        item = {}
        if index < len(en):
            item["en"] = en[index]
        if index < len(zh):
            item["zh"] = zh[index]
        out.append(item)
    return out


def rows(values: dict, name: str, fields: tuple[str, ...]) -> list[dict]:
    """The rows `<name>-<i>-<field>` of a posted form, in order; a row left wholly blank is dropped."""
    indexes = sorted({int(m.group(1)) for k in values for m in [re.fullmatch(rf"{name}-(\d+)-\w+", k)] if m})
    out = []
    for index in indexes:
        row = {f: text(values, f"{name}-{index}-{f}") for f in fields}
        if any(row.values()):
            out.append(row)
    return out


def form_rows(values: dict, name: str, fields: tuple[str, ...]) -> list[dict]:
    """The rows to render: those posted (blank ones dropped, renumbered as sent) and BLANK_ROWS more."""
    kept = rows(values, name, fields)
    return kept + [{f: "" for f in fields} for _ in range(BLANK_ROWS)]


def flatten_rows(rows_: list[dict], name: str) -> dict:
    """Rows back into form values `<name>-<i>-<field>` (so a row's errors, by its index, meet its fields)."""
    out = {}
    for index, row in enumerate(rows_):
        for key, value in row.items():
            out[f"{name}-{index}-{key}"] = value
    return out


def renumbered(values: dict, name: str, fields: tuple[str, ...]) -> dict:
    """The posted values with the rows `name` renumbered as they were sent (blank rows dropped)."""
    out = {k: v for k, v in values.items() if not k.startswith(f"{name}-")}
    out.update(flatten_rows(rows(values, name, fields), name))
    return out


def langs_of(doc: dict, name: str) -> dict:
    value = doc.get(name) or {}
    return {f"{name}_{lang}": value.get(lang, "") for lang in LANGS}


def lang_list_of(doc: dict, name: str) -> dict:
    entries = doc.get(name) or []
    return {f"{name}_{lang}": "\n".join(e.get(lang, "") for e in entries) for lang in LANGS}


def quoted_etag(version) -> str:
    return f'"{int(version)}"'


def version_of(values: dict) -> str | None:
    raw = text(values, "version")
    return quoted_etag(raw) if raw.isdigit() else None


def if_match(values) -> str:
    """The If-Match value of a form that changes one thing at the version it showed; 400 when it has none.

    Every such form carries the version in a hidden field; one without it was not sent by our page.
    """
    etag = version_of(values)
    if etag is None:
        abort(400)
    return etag
