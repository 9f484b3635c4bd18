"""Store: the database layer every step reads and writes through."""

from redress.store.db import Base, make_engine

__all__ = ["Base", "make_engine"]
