"""Languages of the victim portal: gettext catalogs through Babel.

The catalogs are the committed ``.po`` files under ``web/locales``; they are
compiled to ``.mo`` in memory when the portal starts, so a fresh
``pip install -e .`` needs no build step and the compiled form can never go
stale. Each language gets its own Jinja2 environment (nothing is switched
per request, so concurrent requests in different languages cannot mix).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from babel import Locale
from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Language:
    """A language the portal speaks: its code (query and cookie), Babel locale and name."""

    code: str
    locale: str
    html_lang: str
    name: str


LANGUAGES: tuple[Language, ...] = (
    Language("en", "en", "en", "English"),
    Language("zh", "zh_Hans_CN", "zh-Hans", "简体中文"),
)
_BY_CODE: Mapping[str, Language] = {language.code: language for language in LANGUAGES}


def locales_dir() -> Path:
    """Folder of the catalogs (``<locale>/LC_MESSAGES/messages.po``)."""
    return Path(str(resources.files("redress.web") / "locales"))


def po_path(code: str) -> Path:
    """The ``.po`` source of language ``code``."""
    return locales_dir() / code / "LC_MESSAGES" / f"{DOMAIN}.po"


def load_translations(code: str) -> NullTranslations:
    """Compile ``code``'s ``.po`` in memory and return it (English is the source: none)."""
    path = po_path(code)
    if code == DEFAULT_LANGUAGE or not path.is_file():
        return NullTranslations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=_BY_CODE[code].locale, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def language(code: str | None) -> Language | None:
    """The language with ``code`` (``en``, ``zh``, also ``zh-CN``, ``zh_Hans``), if known."""
    if not code:
        return None
    key = code.strip().lower().replace("_", "-")
    if key in _BY_CODE:
        return _BY_CODE[key]
    primary = key.split("-", 1)[0]
    return _BY_CODE.get(primary)


def from_accept_language(header: str | None) -> Language:
    """The best language for an ``Accept-Language`` header (English when none fits)."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if tag and weight > 0:
            ranked.append((-weight, position, tag))
    for _weight, _position, tag in sorted(ranked):
        found = language(tag)
        if found is not None:
            return found
    return _BY_CODE[DEFAULT_LANGUAGE]


def choose_language(query: str | None, cookie: str | None, accept: str | None) -> Language:
    """``?lang=`` first, then the language cookie, then the browser's preference."""
    return language(query) or language(cookie) or from_accept_language(accept)


def format_when(value: dt.datetime, lang: Language) -> str:
    """A date and time, in UTC, as ``lang`` writes them."""
    return format_datetime(value, "medium", tzinfo=dt.UTC, locale=Locale.parse(lang.locale))


def format_count(value: int, lang: Language) -> str:
    """A whole number as ``lang`` writes it."""
    return format_decimal(value, locale=Locale.parse(lang.locale))
