"""The embedded queue recovers items accepted before a restart (nothing accepted is lost)."""

from __future__ import annotations

from pathlib import Path

from media_support import photo
from sqlalchemy import func, select

from redress.config import Settings
from redress.pipeline.container import build_pipeline
from redress.pipeline.models import ScanItem
from redress.pipeline.queue import EmbeddedQueue
from redress.pipeline.service import MediaSubmission
from redress.store.migrate import upgrade


def test_items_left_queued_by_a_stopped_process_are_processed_on_restart(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=database_url, queue_size=5)
    upgrade(database_url)
    first = build_pipeline(settings, embedded_queue=False)  # accepts, never processes
    with first.sessions.begin() as session:
        for n in range(12):
            first.service.accept(
                session,
                MediaSubmission(data=photo(n), filename=f"{n}.jpg"),
                key=None,
                idempotency_key=None,
            )
    first.close()
    second = build_pipeline(settings)  # more items than the queue holds: the sweep feeds it
    try:
        assert isinstance(second.queue, EmbeddedQueue)
        with second.sessions() as session:
            while session.scalar(
                select(func.count()).select_from(ScanItem).where(ScanItem.status == "queued")
            ):
                second.queue.drain()
                session.expire_all()
            done = session.scalar(
                select(func.count()).select_from(ScanItem).where(ScanItem.status == "done")
            )
    finally:
        second.close()
    assert done == 12
