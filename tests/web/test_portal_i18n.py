"""The portal's languages: catalogs complete and current, no English left on Chinese pages,
dates and numbers written the Chinese way."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from portal_support import PORTAL_IMAGES, case_body
from web_support import Api

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

pytestmark = pytest.mark.anyio
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


def visible_text(page: str) -> str:
    """The page's human-readable text: tags, scripts' JSON keys and attributes aside,
    plus the JSON messages the script shows."""
    messages = re.findall(
        r'<script type="application/json" id="portal-messages">(.*?)</script>', page, re.S
    )
    body = re.sub(r"<script.*?</script>", " ", page, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    return html.unescape(body) + " ".join(messages)


async def test_chinese_pages_contain_no_untranslated_strings(api: Api, shared_data: Path) -> None:
    created = (
        await api.client.post(
            "/protect/api/cases",
            json=case_body([shared_data / "pdq" / PORTAL_IMAGES[0]]),
        )
    ).json()
    pages = [
        (await api.client.get("/protect?lang=zh")).text,
        (await api.client.get("/protect/status?lang=zh")).text,
        (
            await api.client.post(
                "/protect/status?lang=zh",
                data={"case_number": created["case_number"], "pin": created["pin"]},
            )
        ).text,
        (
            await api.client.post(
                "/protect/status?lang=zh", data={"case_number": created["case_number"], "pin": "1"}
            )
        ).text,
    ]
    msgids = [m for m in zh_catalog() if len(m) > 3]
    for page in pages:
        text = visible_text(page)
        assert '<html lang="zh-Hans">' in page
        leaked = [m for m in msgids if m in page or m in text]
        assert leaked == []
        # Any run of two or more English words is a leak, bar the names kept on purpose.
        allowed = {"Redress", "English", "PIN", "UTC", "JPEG", "iPhone", "Cookie", "RC"}
        words = re.findall(r"[A-Za-z]{2,}(?:\s+[A-Za-z]{2,})+", text)
        english = [w for w in words if not set(w.split()) <= allowed]
        assert english == [], english
