"""Build the pipeline once per process from settings: engine, services, queue, limiter.

The app factory, ``redress worker`` and the CLI all call :func:`build_pipeline`,
so the web layer, the workers and the command line run the same core.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from redress.actions.interfaces import Actioner, ActionKind
from redress.actions.webhook import WebhookSender
from redress.config import Settings
from redress.evidence.interfaces import EvidenceRecorder
from redress.index.interfaces import PdqIndex
from redress.pipeline.interfaces import Hasher, Matcher, MediaClassifier
from redress.pipeline.keys import VerifiedKeys
from redress.pipeline.policy import load_policy
from redress.pipeline.queue import EmbeddedQueue, JobQueue
from redress.pipeline.ratelimit import (
    HostTokenBuckets,
    RateLimiter,
    RedisTokenBuckets,
    host_buckets,
)
from redress.pipeline.service import EvidenceFactory, PipelineService, ProcessReport, ScanRunner
from redress.store.db import SqliteWriteGate, make_engine, write_gate

if TYPE_CHECKING:
    from redress.actions.reupload import CapturedCopy

log = logging.getLogger(__name__)


@dataclass
class PipelineParts:
    """Optional collaborators; anything left out is built from the settings."""

    matcher: Matcher | None = None
    index_factory: Callable[[], PdqIndex] | None = None  # the bank index (default: MihIndex)
    hasher: Hasher | None = None
    classifier: MediaClassifier | None = None
    actioners: Mapping[ActionKind, Actioner] = field(default_factory=dict)
    http: httpx.Client | None = None
    # Where matched and reported media are preserved (default: the evidence service
    # over the same database and REDRESS_HOME's keys).
    evidence: EvidenceFactory | None = None


@dataclass
class PipelineContainer:
    """Everything one process needs to accept and process scans."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    service: PipelineService
    runner: ScanRunner
    queue: JobQueue
    limiter: RateLimiter
    http: httpx.Client
    redis: Any | None
    keys: VerifiedKeys
    # Held around the pipeline's write transactions. SQLite allows one writer at a time
    # and makes the others sleep and retry (up to 100 ms a try); queueing them on this
    # gate instead (threads and other processes on the same file, see
    # redress.store.db.SqliteWriteGate) hands the database over the moment it is free.
    # A no-op on PostgreSQL. Matching reads outside it.
    writes: AbstractContextManager[Any] = field(default_factory=contextlib.nullcontext)
    # Match in a read before taking the gate (several processes share one SQLite file:
    # they then wait for each other's inserts only); see ScanRunner.match_before_gate.
    match_before_gate: bool = False
    on_processed: list[Callable[[ProcessReport], None]] = field(default_factory=list)
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop the queue and release connections (reverse order of building)."""
        self.queue.stop()
        for closer in reversed(self._closers):
            closer()


def settle_heap() -> None:
    """Collect what start-up left behind, then exempt every object still alive from the
    garbage collector's full passes (:func:`gc.freeze`). For long-running processes
    only (`redress serve`, `redress worker`, `redress telegram run`), once their
    pipeline is built.

    After start-up a serving process holds some 750,000 objects (modules, ORM mappers,
    the schema), nearly all for good. Each full collection walked them all while every
    thread waited: under the lookup load one ran every ~5 s and took 80-90 ms, which
    was the lookups' p99. Objects created afterwards are collected as before.
    """
    gc.collect()
    gc.freeze()


def default_matcher(
    settings: Settings, engine: Engine, index_factory: Callable[[], PdqIndex] | None = None
) -> Matcher:
    """The store's matcher over the configured database, on ``index_factory``'s index."""
    from redress.pipeline.matching import StoreMatcher

    if index_factory is None:
        return StoreMatcher.build(settings, engine)
    return StoreMatcher.build(settings, engine, index_factory)


def default_hasher(settings: Settings) -> Hasher:
    """The signals domain's hasher with options from the settings."""
    from redress.pipeline.matching import SignalsHasher

    return SignalsHasher(settings)


def default_evidence(settings: Settings) -> EvidenceFactory:
    """The evidence service writing through the decision's session (keys from settings)."""
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore

    def recorder(session: Session) -> EvidenceRecorder:
        return build_evidence_service(SqlEvidenceStore(session), settings)

    return recorder


def captured_copy(settings: Settings) -> CapturedCopy:
    """Opens an item's captured evidence through the action's session (the view is
    logged in the evidence ledger with the action as the actor)."""
    from redress.actions.reupload import VIEW_PURPOSE
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore

    def opened(session: Session, evidence_item_id: str, actor: str) -> bytes:
        evidence = build_evidence_service(SqlEvidenceStore(session), settings)
        return evidence.open(evidence_item_id, actor, VIEW_PURPOSE).content

    return opened


def build_pipeline(
    settings: Settings,
    parts: PipelineParts | None = None,
    *,
    embedded_queue: bool = True,
) -> PipelineContainer:
    """Build the pipeline for ``settings``.

    With ``REDRESS_BROKER_URL`` set, queued items go to Celery and rate limits live in
    Redis; otherwise an in-process bounded queue (started here when
    ``embedded_queue``) processes them.
    """
    parts = parts or PipelineParts()
    closers: list[Callable[[], None]] = []
    engine = make_engine(settings.effective_database_url)
    closers.append(engine.dispose)
    sessions = sessionmaker(engine, expire_on_commit=False)
    http = parts.http or httpx.Client(timeout=settings.webhook_timeout)
    if parts.http is None:
        closers.append(http.close)
    matcher = parts.matcher or default_matcher(settings, engine, parts.index_factory)
    closer = getattr(matcher, "close", None)
    if callable(closer):
        closers.append(closer)
    service = PipelineService(
        matcher=matcher,
        hasher=parts.hasher or default_hasher(settings),
        policy=load_policy(settings.effective_policy_path),
        classifier=parts.classifier,
        pdq_quality_min=settings.pdq_quality_min,
        max_attempts=settings.scan_max_attempts,
        evidence=parts.evidence or default_evidence(settings),
    )
    # Connectors add theirs (delete message, restrict user, notify case); blocking
    # re-uploads is done here, in the store. (Imported here: it reads pipeline tables.)
    from redress.actions.reupload import BlockReuploadActioner
    from redress.store.media import entries_for_media

    actioners: dict[ActionKind, Actioner] = {
        ActionKind.BLOCK_REUPLOAD: BlockReuploadActioner(
            sessions,
            # Evidence is opened (decrypted, a logged view) only when its pixels add
            # something to the recorded hashes: a reference set or local features.
            captured=(
                captured_copy(settings)
                if settings.robust_hash_sets or settings.verify_features
                else None
            ),
            hash_copy=functools.partial(entries_for_media, settings=settings),
        ),
        **parts.actioners,
    }
    writes = write_gate(engine)
    if isinstance(writes, SqliteWriteGate):
        closers.append(writes.close)
    match_before_gate = isinstance(writes, SqliteWriteGate) and settings.serve_processes > 1
    runner = ScanRunner(
        sessions,
        service,
        actioners=actioners,
        webhooks=WebhookSender(http),
        lease_seconds=settings.scan_lease_seconds,
        writes=writes,
        match_before_gate=match_before_gate,
    )
    redis: Any | None = None
    queue: JobQueue
    limiter: RateLimiter
    on_processed: list[Callable[[ProcessReport], None]] = []
    if settings.broker_url:
        import redis as redis_lib

        from redress.pipeline.tasks import CeleryQueue, make_celery, publish_batch

        redis = redis_lib.Redis.from_url(settings.broker_url)
        celery = make_celery(settings, lambda: runner)
        queue = CeleryQueue(celery, redis, settings.queue_size, batch=publish_batch(settings))
        limiter = RedisTokenBuckets(redis)
    else:
        embedded = EmbeddedQueue(
            runner,
            size=settings.queue_size,
            threads=settings.pipeline_threads,
            # A batch that crashes its worker costs each of its items one attempt, so
            # with a single attempt allowed items go one by one.
            batch=settings.pipeline_batch if settings.scan_max_attempts > 1 else 1,
            on_processed=lambda report: [f(report) for f in on_processed],
        )
        queue = embedded
        limiter = host_buckets(settings)
        if isinstance(limiter, HostTokenBuckets):
            closers.append(limiter.close)
    container = PipelineContainer(
        settings=settings,
        engine=engine,
        sessions=sessions,
        service=service,
        runner=runner,
        queue=queue,
        limiter=limiter,
        http=http,
        redis=redis,
        keys=VerifiedKeys(settings.api_key_cache_seconds),
        writes=writes,
        match_before_gate=match_before_gate,
        on_processed=on_processed,
        _closers=closers,
    )
    if embedded_queue:
        if not settings.broker_url:
            # This process decides and captures: clear what a killed one half-wrote.
            from redress.evidence.service import BlobStore

            blobs = BlobStore(settings.effective_evidence_dir / "blobs")
            if abandoned := blobs.remove_abandoned():
                log.warning("removed %d half-written evidence blobs", abandoned)
        queue.start()
    return container
