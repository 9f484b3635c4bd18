"""Tables of the web layer: the victim portal's PIN lock-out."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from redress.store.db import Base
from redress.store.models import UtcDateTime


class PinLock(Base):
    """Wrong-PIN attempts on one case, so that guessing survives no restart.

    ``failures`` counts wrong PINs in a row (a right PIN resets it); once it
    reaches the limit, ``locked_until`` is set and every attempt, right or
    wrong, is refused until then.
    """

    __tablename__ = "portal_pin_lock"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("victim_case.id", ondelete="CASCADE"), primary_key=True
    )
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_failure_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
