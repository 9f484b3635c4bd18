"""Web: the FastAPI app factory and REST API (docs/api.md), and the victim portal's
in-browser hashing assets (``static/portal/``) with the hash-set definition they
share with the server (:mod:`redress.web.hashset`)."""

from redress.web.app import AppState, create_app

__all__ = ["AppState", "create_app"]
