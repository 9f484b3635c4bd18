"""Keep the portal's gettext catalogs in step with its templates.

``python -m redress.web.catalog`` extracts every message from
``web/templates`` and updates each language's ``.po`` (new messages are
added untranslated, vanished ones dropped); a test fails while any message
is missing or untranslated.
"""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from redress.web.hashset import portal_static_dir
from redress.web.i18n import DEFAULT_LANGUAGE, DOMAIN, LANGUAGES, po_path


def template_messages() -> Catalog:
    """Every message the portal's templates mark for translation."""
    templates = portal_static_dir().parent.parent / "templates"
    catalog = Catalog(domain=DOMAIN, project="redress")
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(templates),
        method_map=[("**.html", "jinja2")],
        options_map={"**.html": {"extensions": "jinja2.ext.i18n"}},
    ):
        if message:
            catalog.add(message, None, [(f"templates/{filename}", lineno)])
    return catalog


def update_catalogs() -> list[str]:
    """Merge the templates' messages into each language's ``.po``; return the paths."""
    template = template_messages()
    written: list[str] = []
    for lang in LANGUAGES:
        if lang.code == DEFAULT_LANGUAGE:
            continue
        path = po_path(lang.code)
        if path.is_file():
            with path.open("rb") as source:
                catalog = read_po(source, locale=lang.locale, domain=DOMAIN)
        else:
            catalog = Catalog(locale=lang.locale, domain=DOMAIN, project="redress")
        catalog.update(template, no_fuzzy_matching=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as target:
            write_po(target, catalog, width=100, omit_header=False, ignore_obsolete=True)
        written.append(str(path))
    return written


if __name__ == "__main__":
    for written_path in update_catalogs():
        print(written_path)
