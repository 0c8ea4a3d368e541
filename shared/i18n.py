"""Languages of the pages and mails: Flask-Babel with one gettext catalog (shared/translations).

`LANGS` are the languages offered; `translations(lang)` gives a babel
Translations object usable outside a request (a mail sender, a worker);
`init_app(app)` sets Flask-Babel up for a web app, choosing the language from
`?lang=` (which also remembers it in a cookie), else that cookie, else the
browser's Accept-Language, else English. `make translations` extracts,
updates and compiles the catalog (babel.cfg names the sources).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel import support
from flask import Flask, g, request
from flask_babel import Babel, get_locale
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

LANGS = ("en", "zh")
DEFAULT_LANG = "en"
DOMAIN = "messages"
TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"
LANG_COOKIE = "lang"
LANG_COOKIE_SECONDS = 365 * 24 * 3600
# the HTML lang attribute of each language (Chinese pages are in simplified characters)
HTML_LANG = {"en": "en", "zh": "zh-Hans"}


def N_(message: str) -> str:
    """Mark a message for extraction (pybabel); it is translated where it is shown."""
    return message


@lru_cache(maxsize=None)
def translations(lang: str) -> support.Translations:
    """The compiled catalog of `lang` (English, the source language, for any other value)."""
    lang = lang if lang in LANGS else DEFAULT_LANG
    return support.Translations.load(str(TRANSLATIONS_DIR), [lang], domain=DOMAIN)


def pick_lang(value: str | None) -> str | None:
    """`value` if it names a language offered, else None."""
    return value if value in LANGS else None


def accepted_lang(header: str | None) -> str:
    """The language offered that an Accept-Language header (or a bare code) prefers most; English otherwise."""
    return parse_accept_header(header or "", LanguageAccept).best_match(LANGS) or DEFAULT_LANG


def select_lang() -> str:
    """The language of this request: ?lang=, then the remembered choice, then the browser's, then English."""
    return (pick_lang(request.args.get("lang")) or pick_lang(request.cookies.get(LANG_COOKIE))
            or request.accept_languages.best_match(LANGS) or DEFAULT_LANG)


def current_lang() -> str:
    """The language of the page being rendered ("en" or "zh")."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGS else DEFAULT_LANG


def init_app(app: Flask, secure_cookie: bool = False) -> Babel:
    """Flask-Babel for `app`, and the cookie that remembers a language chosen with ?lang=."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANG)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS_DIR)
    app.config["BABEL_DOMAIN"] = DOMAIN
    babel = Babel(app, locale_selector=select_lang)

    @app.after_request
    def _remember_lang(response):
        chosen = pick_lang(request.args.get("lang"))
        if chosen and chosen != request.cookies.get(LANG_COOKIE):
            response.set_cookie(LANG_COOKIE, chosen, max_age=LANG_COOKIE_SECONDS, httponly=True,
                                samesite="Lax", secure=secure_cookie)
        return response

    @app.context_processor
    def _lang_context():
        lang = current_lang()
        other = "zh" if lang == "en" else "en"
        return {"lang": lang, "other_lang": other, "html_lang": HTML_LANG[lang], "other_html_lang": HTML_LANG[other]}

    return babel
