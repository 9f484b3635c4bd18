"""The portal's languages: catalogs complete and current, language choice, dates and
numbers written the Chinese way. (Rendered Chinese pages: test_portal.py.)"""

from __future__ import annotations

import datetime as dt
import re

from babel.messages.pofile import read_po

from redress.web.catalog import template_messages
from redress.web.i18n import (
    LANGUAGES,
    choose_language,
    format_count,
    format_when,
    from_accept_language,
    language,
    load_translations,
    po_path,
)

ZH = language("zh")


def zh_catalog() -> dict[str, str]:
    with po_path("zh").open("rb") as source:
        catalog = read_po(source, locale="zh_Hans_CN")
    return {str(m.id): str(m.string) for m in catalog if m.id and not m.fuzzy}


def test_every_message_is_translated_and_the_catalog_is_current() -> None:
    wanted = {str(m.id) for m in template_messages() if m.id}
    catalog = zh_catalog()
    assert wanted, "no messages found in the templates"
    missing = sorted(wanted - set(catalog))
    assert missing == [], "run python -m redress.web.catalog and translate these"
    assert sorted(m for m in wanted if not catalog[m].strip()) == []
    assert sorted(set(catalog) - wanted) == []  # nothing stale either
    for msgid in wanted:  # placeholders survive translation
        names = set(re.findall(r"%\((\w+)\)s|\{(\w+)\}", msgid))
        assert names == set(re.findall(r"%\((\w+)\)s|\{(\w+)\}", catalog[msgid])), msgid


def test_po_compiles_and_translates() -> None:
    translations = load_translations("zh")
    assert translations.gettext("Case number") == "案件编号"
    assert load_translations("en").gettext("Case number") == "Case number"


def test_language_choice() -> None:
    assert from_accept_language("zh-CN,zh;q=0.9,en;q=0.8").code == "zh"
    assert from_accept_language("fr-FR,en;q=0.5,zh;q=0.4").code == "en"
    assert from_accept_language("de-DE").code == "en"
    assert from_accept_language("en;q=0.1, zh-Hans;q=0.9").code == "zh"
    assert choose_language("zh", "en", "en").code == "zh"
    assert choose_language(None, "zh", "en").code == "zh"
    assert choose_language("xx", None, "zh-TW").code == "zh"


def test_dates_and_numbers_are_localized() -> None:
    assert ZH is not None
    when = dt.datetime(2026, 11, 25, 2, 13, tzinfo=dt.UTC)
    assert "2026年11月25日" in format_when(when, ZH)
    assert format_count(12345, ZH) == "12,345"
    english = LANGUAGES[0]
    assert format_when(when, english).startswith("Nov 25, 2026")
