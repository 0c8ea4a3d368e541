"""Mail: messages from Jinja templates in the person's language, delivered over SMTP.

Templates live in shared/templates/mail/ (`<name>.txt` and `<name>.html`) and use
gettext (`{% trans %}`, `_()`), with the catalogs the pages use
(shared/translations/<lang>/LC_MESSAGES/messages.mo, domain `messages`). A message
is multipart/alternative: plain text, HTML and, when it carries an invitation, a
`text/calendar; method=...` part.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path

from babel.support import NullTranslations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from shared import i18n
from shared.config import Settings, read_secret

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates" / "mail"
LANGS = i18n.LANGS
DEFAULT_LANG = i18n.DEFAULT_LANG


def pick_lang(header: str | None) -> str:
    """The language we write in that an Accept-Language header (or a bare code) prefers; English otherwise."""
    return i18n.accepted_lang(header)


def translations(lang: str) -> NullTranslations:
    """The gettext catalog of `lang`, usable outside a request: the pages' own (shared/i18n.py)."""
    return i18n.translations(lang)


@lru_cache(maxsize=None)
def _environment(lang: str, autoescape: bool) -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES_DIR)), extensions=["jinja2.ext.i18n"],
                      autoescape=select_autoescape(default=autoescape, default_for_string=autoescape),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)
    return env


def gettext(lang: str, message: str, **values) -> str:
    if not message:  # gettext("") is the catalog's header, never a message
        return ""
    text = translations(lang).gettext(message)
    return text % values if values else text


def render(name: str, lang: str, context: dict) -> tuple[str, str]:
    """(text, html) of the template pair `name` in `lang`."""
    text = _environment(lang, False).get_template(f"{name}.txt").render(lang=lang, **context)
    html = _environment(lang, True).get_template(f"{name}.html").render(lang=lang, **context)
    return text, html


def build_message(*, sender: str, to: str, subject: str, text: str, html: str, message_key: str,
                  calendar: tuple[bytes, str] | None = None) -> EmailMessage:
    """A multipart/alternative message; `calendar` is (iCalendar bytes, its METHOD) for an invitation part.

    The Message-ID is derived from `message_key`, so a repeated delivery carries the same one.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    domain = sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{re.sub(r'[^A-Za-z0-9.-]', '.', message_key)}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    if calendar is not None:
        body, method = calendar
        message.add_alternative(body.decode("utf-8"), subtype="calendar", params={"method": method})
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    """Deliver one message to the school's SMTP server; returns once the server accepted it.

    Raises smtplib.SMTPException or OSError when it did not (the caller retries).
    """
    timeout = settings.smtp_timeout_seconds
    if settings.smtp_tls == "tls":
        client = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port, timeout=timeout,
                                  context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    try:
        client.ehlo()
        if settings.smtp_tls == "starttls":
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if settings.smtp_user:
            client.login(settings.smtp_user, smtp_password(settings))
        refused = client.send_message(message)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


def smtp_password(settings: Settings) -> str:
    """The SMTP password from its file; ConfigError (the fix in words) when it cannot be read.

    The mail sender reads it once as it starts (services/visits/notify.py), so a wrong file
    stops the worker at once instead of failing each delivery as if the server were away.
    """
    if settings.smtp_password_file is None:
        return ""
    return read_secret(settings.smtp_password_file, "SMTP_PASSWORD_FILE")


def is_permanent(exc: Exception) -> bool:
    """A refusal that a retry will not change: a 5xx answer to the recipient or the message."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, (smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
        return exc.smtp_code >= 500
    return False
