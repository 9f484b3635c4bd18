"""Where accepted media waits: an in-process bounded queue (the embedded default) or
Celery over Redis (``REDRESS_BROKER_URL``). Both feed :class:`ScanRunner`.

Items are durable in the database before they are queued, so a queue is only
a notification: after a crash, :meth:`EmbeddedQueue.start` re-queues every
item still marked queued, and an idle sweep catches any that a full queue
could not take.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from redress.pipeline.errors import QueueFullError
from redress.pipeline.service import ProcessReport, ScanRunner

log = logging.getLogger(__name__)


class JobQueue(Protocol):
    """Queues accepted items for processing."""

    def has_room(self) -> bool:
        """Whether a new item would be accepted now (back-pressure check)."""
        ...

    def submit(self, item_id: str) -> None:
        """Queue an item that is already committed to the database."""
        ...

    def depth(self) -> int:
        """Items waiting."""
        ...

    def check(self) -> None:
        """Raise if the queue cannot work (readiness)."""
        ...

    def start(self) -> None:
        """Begin processing (and recover items left queued by a crash)."""
        ...

    def stop(self) -> None:
        """Stop processing; queued items stay in the database."""
        ...


class EmbeddedQueue:
    """A bounded in-process queue drained by worker threads, each taking up to ``batch``
    waiting items at a time (:meth:`ScanRunner.process_many`)."""

    def __init__(
        self,
        runner: ScanRunner,
        *,
        size: int,
        threads: int,
        batch: int = 1,
        sweep_seconds: float = 5.0,
        on_processed: Callable[[ProcessReport], Any] | None = None,
    ) -> None:
        self.runner = runner
        self.on_processed = on_processed
        self.size = size
        self.threads = threads
        self.batch = max(1, batch)
        self.sweep_seconds = sweep_seconds
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=size)
        self._inflight: set[str] = set()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.processed = 0

    def has_room(self) -> bool:
        """True while fewer than ``size`` items wait."""
        return self._queue.qsize() < self.size

    def submit(self, item_id: str) -> None:
        """Queue an item; raises :class:`QueueFullError` if the bound is reached (the item
        stays in the database and the sweep picks it up)."""
        with self._lock:
            if item_id in self._inflight:
                return
            self._inflight.add(item_id)
        try:
            self._queue.put_nowait(item_id)
        except queue.Full:
            with self._lock:
                self._inflight.discard(item_id)
            raise QueueFullError("the scan queue is full; retry later") from None

    def depth(self) -> int:
        """Items waiting (not counting those being processed)."""
        return self._queue.qsize()

    def check(self) -> None:
        """Ready while the worker threads are alive."""
        if self._workers and not all(t.is_alive() for t in self._workers):
            raise RuntimeError("a pipeline worker thread has stopped")

    def start(self) -> None:
        """Start the worker threads and a sweeper that re-queues stranded items."""
        self._stopping.clear()
        for n in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"redress-pipeline-{n}", daemon=True)
            thread.start()
            self._workers.append(thread)
        sweeper = threading.Thread(target=self._sweep, name="redress-pipeline-sweep", daemon=True)
        sweeper.start()
        self._workers.append(sweeper)

    def stop(self) -> None:
        """Stop the threads after the items they hold; the rest stay queued in the database."""
        self._stopping.set()
        for _ in range(self.threads):
            try:
                self._queue.put(None, timeout=1)
            except queue.Full:
                break
        for thread in self._workers:
            thread.join(timeout=30)
        self._workers.clear()

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until nothing is queued or in flight (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._inflight:
                    return True
            time.sleep(0.01)
        return False

    def _take(self) -> tuple[list[str], bool]:
        """The next batch: one item (waiting for it), then whatever else is already
        waiting, up to ``batch``; and whether to stop after it."""
        first = self._queue.get()
        if first is None or self._stopping.is_set():
            return [], True
        batch = [first]
        while len(batch) < self.batch:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:  # a stop signal: finish this batch, then stop
                return batch, True
            batch.append(more)
        return batch, False

    def _work(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._take()
            if not batch:
                return
            try:
                reports = self.runner.process_many(batch)
                self.processed += len(reports)
                if self.on_processed is not None:
                    for report in reports:
                        self.on_processed(report)
            except Exception:  # one bad item must never stop the queue
                # The attempts were counted; the sweep retries the items (alone, being
                # retries) until each is done or dead-lettered.
                log.exception("processing %s failed", ", ".join(batch))
            finally:
                with self._lock:
                    self._inflight.difference_update(batch)

    def _sweep(self) -> None:
        first = True
        while not self._stopping.is_set():
            if first or self._queue.empty():
                try:
                    stranded = self.runner.recover()
                except Exception:  # a database hiccup must not kill the sweeper
                    log.exception("sweep failed")
                    stranded = []
                for item_id in stranded:
                    if self._stopping.is_set():
                        return
                    with self._lock:
                        if item_id in self._inflight:
                            continue
                        self._inflight.add(item_id)
                    while not self._stopping.is_set():
                        try:
                            self._queue.put(item_id, timeout=0.5)
                            break
                        except queue.Full:
                            continue
            first = False
            self._stopping.wait(self.sweep_seconds)
