"""Collects every domain's tables so Alembic sees the whole schema."""

from __future__ import annotations

from sqlalchemy import MetaData

from redress.store.db import Base


def load_all_models() -> MetaData:
    """Import each domain's ``models`` module (registering its tables) and return the metadata."""
    import redress.connectors.telegram.models
    import redress.evidence.models
    import redress.pipeline.models
    import redress.reports.models
    import redress.review.models
    import redress.store.models
    import redress.web.models  # noqa: F401

    return Base.metadata
