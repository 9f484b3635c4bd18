"""All SQL of the pipeline's scan items, spooled media and action outbox. Only flushes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from redress.pipeline.models import ScanAction, ScanItem, ScanMedia

# The tables behind the models, for Core INSERTs that skip the unit of work.
_ITEMS = cast(Table, ScanItem.__table__)
_MEDIA = cast(Table, ScanMedia.__table__)

QUEUED = "queued"
DONE = "done"
DEAD = "dead"


class ScanStore:
    """Queries over ``scan_items``, ``scan_media`` and ``scan_actions``."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def session(self) -> Session:
        """The session this store writes through."""
        return self._session

    def by_idempotency(self, scope: str, key: str) -> ScanItem | None:
        """The item already accepted under this idempotency key, if any."""
        return self._session.scalars(
            select(ScanItem).where(
                ScanItem.idempotency_scope == scope, ScanItem.idempotency_key == key
            )
        ).first()

    def by_idempotency_many(self, scope: str, keys: list[str]) -> dict[str, ScanItem]:
        """The items already accepted under any of these idempotency keys, by key."""
        rows = self._session.scalars(
            select(ScanItem).where(
                ScanItem.idempotency_scope == scope, ScanItem.idempotency_key.in_(set(keys))
            )
        )
        return {row.idempotency_key: row for row in rows if row.idempotency_key is not None}

    def add(self, item: ScanItem) -> ScanItem:
        """Insert an item, tracked in the session (a hash scan is decided right after)."""
        self._session.add(item)
        self._session.flush()
        return item

    def add_queued(self, item: ScanItem, media: bytes) -> ScanItem:
        """Insert a queued media item and its bytes (spooled in the database) without
        tracking the item in the session (it is decided later, in another transaction):
        two Core INSERTs."""
        self.insert_items([item])
        self._session.execute(insert(_MEDIA).values(item_id=item.id, data=media))
        return item

    def get(self, item_id: str, *, lock: bool = False) -> ScanItem | None:
        """One item; ``lock`` takes a row lock (skipping it if another worker holds it)."""
        query = select(ScanItem).where(ScanItem.id == item_id)
        if lock:
            query = query.with_for_update(skip_locked=True)
        return self._session.scalars(query).first()

    def media(self, item_id: str) -> bytes | None:
        """The spooled bytes of a media item."""
        return self._session.scalars(
            select(ScanMedia.data).where(ScanMedia.item_id == item_id)
        ).first()

    def drop_media(self, item_id: str) -> None:
        """Delete spooled bytes once the item is processed (Redress keeps hashes, not media)."""
        self._session.execute(delete(ScanMedia).where(ScanMedia.item_id == item_id))

    def drop_media_many(self, item_ids: Sequence[str]) -> None:
        """:meth:`drop_media` for a batch, in one DELETE."""
        if item_ids:
            self._session.execute(delete(_MEDIA).where(_MEDIA.c.item_id.in_(list(item_ids))))

    def lease(self, item_id: str, now: dt.datetime, until: dt.datetime) -> tuple[str, int]:
        """Take a queued item for processing until ``until`` and count the attempt.

        Returns ``("leased", attempts)``, ``("busy", 0)`` while another worker's lease
        runs, or ``("finished", 0)`` when the item is no longer queued. Atomic on both
        backends (one conditional UPDATE), so duplicates of a task never both count.
        """
        result = self._session.execute(
            update(ScanItem)
            .where(
                ScanItem.id == item_id,
                ScanItem.status == QUEUED,
                or_(ScanItem.leased_until.is_(None), ScanItem.leased_until < now),
            )
            .values(attempts=ScanItem.attempts + 1, leased_until=until)
        )
        if getattr(result, "rowcount", 0):
            attempts = self._session.scalar(select(ScanItem.attempts).where(ScanItem.id == item_id))
            return "leased", int(attempts or 0)
        status = self._session.scalar(select(ScanItem.status).where(ScanItem.id == item_id))
        return ("busy", 0) if status == QUEUED else ("finished", 0)

    def release(self, item_id: str, until: dt.datetime) -> None:
        """Give a leased item back without counting the attempt (the failure was the
        infrastructure's, not the item's), holding it until ``until`` before a retry."""
        self._session.execute(
            update(ScanItem)
            .where(ScanItem.id == item_id, ScanItem.status == QUEUED, ScanItem.attempts > 0)
            .values(attempts=ScanItem.attempts - 1, leased_until=until)
        )

    def lease_many(
        self,
        item_ids: Sequence[str],
        now: dt.datetime,
        until: dt.datetime,
        *,
        first_attempts_only: bool = False,
    ) -> dict[str, tuple[str, int]]:
        """:meth:`lease` for a batch, in one conditional UPDATE (``RETURNING`` the items
        this call leased): ``{item_id: (state, attempts)}`` for every ID asked for.
        With ``first_attempts_only``, only items never tried before are leased and only
        they are answered for."""
        wanted = list(dict.fromkeys(item_ids))
        # On the table, not the model: no item of this transaction is loaded yet, so the
        # ORM has nothing to synchronise, and looking costs more than the UPDATE.
        items = _ITEMS.c
        conditions = [
            items.id.in_(wanted),
            items.status == QUEUED,
            or_(items.leased_until.is_(None), items.leased_until < now),
        ]
        if first_attempts_only:
            conditions.append(items.attempts == 0)
        leased: dict[str, int] = {
            row[0]: int(row[1])
            for row in self._session.execute(
                update(_ITEMS)
                .where(*conditions)
                .values(attempts=items.attempts + 1, leased_until=until)
                .returning(items.id, items.attempts)
            )
        }
        if first_attempts_only:
            return {i: ("leased", n) for i, n in leased.items()}
        others = [i for i in wanted if i not in leased]
        status: dict[str, str] = {}
        if others:
            status = {
                row[0]: row[1]
                for row in self._session.execute(
                    select(ScanItem.id, ScanItem.status).where(ScanItem.id.in_(others))
                )
            }
        return {
            i: ("leased", leased[i])
            if i in leased
            else (("busy", 0) if status.get(i) == QUEUED else ("finished", 0))
            for i in wanted
        }

    def get_many(self, item_ids: Sequence[str], *, lock: bool = False) -> dict[str, ScanItem]:
        """Items by ID; ``lock`` takes row locks (skipping rows another worker holds)."""
        query = select(ScanItem).where(ScanItem.id.in_(list(item_ids)))
        if lock:
            query = query.with_for_update(skip_locked=True)
        return {row.id: row for row in self._session.scalars(query)}

    def media_many(self, item_ids: Sequence[str]) -> dict[str, bytes]:
        """The spooled bytes of media items, by item ID."""
        rows = self._session.execute(
            select(_MEDIA.c.item_id, _MEDIA.c.data).where(_MEDIA.c.item_id.in_(list(item_ids)))
        )
        return {row[0]: row[1] for row in rows}

    def queued_ids(
        self,
        limit: int = 10_000,
        before: dt.datetime | None = None,
        unleased_at: dt.datetime | None = None,
    ) -> list[str]:
        """Items accepted but not yet finished, oldest first (for recovery after a restart);
        ``before``: accepted before then; ``unleased_at``: no worker's lease runs then."""
        query = select(ScanItem.id).where(ScanItem.status == QUEUED)
        if before is not None:
            query = query.where(ScanItem.created_at < before)
        if unleased_at is not None:
            query = query.where(
                or_(ScanItem.leased_until.is_(None), ScanItem.leased_until < unleased_at)
            )
        return list(self._session.scalars(query.order_by(ScanItem.created_at).limit(limit)))

    def insert_items(self, items: Sequence[ScanItem]) -> None:
        """INSERT new items in one statement per shape, without tracking them in the session
        (for items that are not changed again in the transaction). Unset columns stay NULL,
        as the unit of work leaves them."""
        columns = [c.key for c in ScanItem.__mapper__.column_attrs]
        shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
        for item in items:
            row = {k: v for k in columns if (v := item.__dict__.get(k)) is not None}
            shapes.setdefault(tuple(row), []).append(row)
        for rows in shapes.values():  # Core, not the ORM's bulk path: it costs a third more
            self._session.execute(insert(_ITEMS), rows)

    def insert_actions(self, actions: Sequence[tuple[str, str]], now: dt.datetime) -> None:
        """Put ``(item_id, kind)`` actions in the outbox in one INSERT (see :meth:`add_action`)."""
        if actions:
            self._session.execute(
                insert(ScanAction),
                [
                    {
                        "id": f"{item_id}:{kind}",
                        "item_id": item_id,
                        "kind": kind,
                        "status": "pending",
                        "attempts": 0,
                        "created_at": now,
                    }
                    for item_id, kind in actions
                ],
            )

    def add_action(self, item_id: str, kind: str, now: dt.datetime) -> ScanAction:
        """Put one action in the outbox (at most one per item and kind)."""
        row = ScanAction(
            id=f"{item_id}:{kind}",
            item_id=item_id,
            kind=kind,
            status="pending",
            attempts=0,
            created_at=now,
        )
        self._session.add(row)  # flushed with the item's outcome, by the caller
        return row

    def actions(self, item_id: str) -> list[ScanAction]:
        """The outbox rows of one item."""
        return list(
            self._session.scalars(
                select(ScanAction).where(ScanAction.item_id == item_id).order_by(ScanAction.id)
            )
        )

    def pending_actions(self, kind: str, limit: int = 100) -> list[ScanAction]:
        """Outbox rows of one kind still waiting, oldest first."""
        return list(
            self._session.scalars(
                select(ScanAction)
                .where(ScanAction.kind == kind, ScanAction.status == "pending")
                .order_by(ScanAction.created_at, ScanAction.id)
                .limit(limit)
            )
        )

    def claim_action(self, action_id: str) -> bool:
        """Move a pending action to running; False if someone else already claimed it."""
        result = self._session.execute(
            update(ScanAction)
            .where(ScanAction.id == action_id, ScanAction.status == "pending")
            .values(status="running", attempts=ScanAction.attempts + 1)
        )
        return bool(getattr(result, "rowcount", 0))

    def finish_action(self, action_id: str, ok: bool, detail: str, now: dt.datetime) -> None:
        """Record the result of a claimed action."""
        self._session.execute(
            update(ScanAction)
            .where(ScanAction.id == action_id)
            .values(status="done" if ok else "failed", detail=detail[:2000], done_at=now)
        )

    def count_by(self, column: str) -> dict[str, int]:
        """Item counts grouped by ``status`` or ``outcome`` (for metrics)."""
        col = ScanItem.status if column == "status" else ScanItem.outcome
        rows = self._session.execute(select(col, func.count()).group_by(col))
        return {str(key): int(n) for key, n in rows if key is not None}

    def count_actions(self) -> dict[str, int]:
        """Action counts grouped by ``kind:status`` (for metrics)."""
        rows = self._session.execute(
            select(ScanAction.kind, ScanAction.status, func.count()).group_by(
                ScanAction.kind, ScanAction.status
            )
        )
        return {f"{kind}:{status}": int(n) for kind, status, n in rows}
