"""Web: the FastAPI app factory and the REST API (docs/api.md)."""

from redress.web.app import AppState, create_app

__all__ = ["AppState", "create_app"]
