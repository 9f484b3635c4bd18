"""Web: the FastAPI app factory and REST API (docs/api.md), the victim portal at
``/protect`` (docs/portal.md: :mod:`redress.web.portal`, :mod:`redress.web.portal_service`,
:mod:`redress.web.i18n`) and its in-browser hashing assets (``static/portal/``) with the
hash-set definition they share with the server (:mod:`redress.web.hashset`)."""

from redress.web.app import AppState, create_app

__all__ = ["AppState", "create_app"]
