"""The pipeline: hash -> match -> policy -> outcome, each step recorded on the item.

:class:`PipelineService` holds the rules and works inside a session the edge
gives it (a request, a worker task, a CLI command), which commits.
:class:`ScanRunner` is that edge for queued media: it counts the attempt,
hashes outside any transaction, decides inside one, and only after the
commit performs the outbox's actions and sends the job's webhook callback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from redress.actions.interfaces import (
    Actioner,
    ActionKind,
    ActionRequest,
    ActionResult,
    ActionTarget,
)
from redress.actions.webhook import WebhookDelivery, WebhookSender
from redress.errors import RedressError
from redress.evidence.errors import EvidenceStorageError
from redress.evidence.interfaces import (
    CaptureRequest,
    EntryDraft,
    EvidenceRecorder,
    MessageFacts,
    Trigger,
    TriggerKind,
)
from redress.pipeline.errors import IdempotencyConflictError, UnknownBankError
from redress.pipeline.interfaces import (
    Hasher,
    Matcher,
    MatchQuery,
    MediaClassifier,
    MediaDigest,
    Outcome,
    VpdqQueryFrame,
)
from redress.pipeline.keys import KeyInfo
from redress.pipeline.models import ApiKey, ScanItem
from redress.pipeline.policy import Decision, Policy, PolicySignals
from redress.pipeline.store import DEAD, DONE, QUEUED, ScanStore
from redress.pipeline.text import find_personal_details
from redress.signals.types import PdqHash
from redress.store.interfaces import MatchResult, case_key

log = logging.getLogger(__name__)

DEFERRED = "deferred"

Clock = Callable[[], dt.datetime]
EvidenceFactory = Callable[[Session], EvidenceRecorder]
"""Builds the evidence recorder that writes through the session a decision is made in."""


def utcnow() -> dt.datetime:
    """The current UTC time (the default clock)."""
    return dt.datetime.now(dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class SightingFacts:
    """What the platform showed about the message an item came in (evidence facts).

    A connector fills this in; the pipeline keeps it with the item and puts it in the
    capture record when the item is preserved as evidence. ``raw`` is the platform's
    own object (e.g. the Bot API update) as JSON text, unchanged. Dates are UTC.
    """

    connector: str | None = None  # the code that collected it, e.g. "telegram-bot"
    chat_title: str | None = None
    message_link: str | None = None
    sender_name: str | None = None
    message_date: dt.datetime | None = None
    edit_date: dt.datetime | None = None
    forward_origin: str | None = None
    content_protected: bool | None = None
    media_group_id: str | None = None
    raw: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form (dates as ISO 8601)."""
        data = asdict(self)
        data["message_date"] = _iso(self.message_date)
        data["edit_date"] = _iso(self.edit_date)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SightingFacts:
        """Rebuild from :meth:`to_json`."""
        protected = data.get("content_protected")
        return cls(
            connector=data.get("connector"),
            chat_title=data.get("chat_title"),
            message_link=data.get("message_link"),
            sender_name=data.get("sender_name"),
            message_date=_from_iso(data.get("message_date")),
            edit_date=_from_iso(data.get("edit_date")),
            forward_origin=data.get("forward_origin"),
            content_protected=None if protected is None else bool(protected),
            media_group_id=data.get("media_group_id"),
            raw=data.get("raw"),
        )


@dataclass(frozen=True, slots=True)
class ScanContext:
    """Where an item came from and what came with it, beyond its bytes or hashes."""

    source: str = "api"
    caption: str | None = None
    reporters: int = 0
    trusted_flagger: bool = False
    target: ActionTarget = field(default_factory=ActionTarget)
    banks: tuple[str, ...] = ()
    callback_url: str | None = None
    sighting: SightingFacts | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe form for the item's ``request`` column."""
        # Field by field rather than dataclasses.asdict, whose deep copy showed in the
        # profile of every hash lookup.
        target = self.target
        return {
            "source": self.source,
            "caption": self.caption,
            "reporters": self.reporters,
            "trusted_flagger": self.trusted_flagger,
            "target": {
                "platform": target.platform,
                "chat_id": target.chat_id,
                "message_id": target.message_id,
                "user_id": target.user_id,
            },
            "banks": list(self.banks),
            "callback_url": self.callback_url,
            "sighting": self.sighting.to_json() if self.sighting is not None else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScanContext:
        """Rebuild from :meth:`to_json`."""
        sighting = data.get("sighting")
        return cls(
            source=str(data.get("source", "api")),
            caption=data.get("caption"),
            reporters=int(data.get("reporters", 0)),
            trusted_flagger=bool(data.get("trusted_flagger", False)),
            target=ActionTarget(**(data.get("target") or {})),
            banks=tuple(data.get("banks") or ()),
            callback_url=data.get("callback_url"),
            sighting=SightingFacts.from_json(sighting) if sighting else None,
        )


@dataclass(frozen=True, slots=True)
class HashSubmission:
    """A scan by hashes (a helpline, a client that hashes on its side)."""

    query: MatchQuery
    context: ScanContext = field(default_factory=ScanContext)


@dataclass(frozen=True, slots=True)
class MediaSubmission:
    """A scan by upload: the media bytes themselves."""

    data: bytes
    filename: str | None = None
    context: ScanContext = field(default_factory=ScanContext)


@dataclass(frozen=True, slots=True)
class PublicMatch:
    """A match as the submitter sees it: the bank and the kind of signal, no distance."""

    bank: str
    signal: str


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What the submitter of an item sees. Never near misses or distances."""

    item_id: str
    status: str
    mode: str
    outcome: str | None
    priority: int | None
    matches: tuple[PublicMatch, ...]
    actions: tuple[str, ...]
    personal_details: tuple[str, ...]
    error_code: str | None
    error_detail: str | None
    created: bool = True
    evidence_item_id: str | None = None  # for the connector that acts; not shown to submitters


def _query_json(query: MatchQuery) -> dict[str, Any]:
    return {
        "pdq": [[h.hex, h.quality] for h in query.pdq],
        "md5": query.md5,
        "sha256": query.sha256,
        "vpdq": [[f.pdq.hex, f.quality, f.ts] for f in query.vpdq],
    }


def _query_from_json(data: Mapping[str, Any], banks: tuple[str, ...]) -> MatchQuery:
    return MatchQuery(
        pdq=tuple(PdqHash.from_hex(h, int(q)) for h, q in data.get("pdq", [])),
        md5=data.get("md5"),
        sha256=data.get("sha256"),
        vpdq=tuple(
            VpdqQueryFrame(PdqHash.from_hex(h, int(q)), int(q), float(ts))
            for h, q, ts in data.get("vpdq", [])
        ),
        banks=banks,
    )


def _fingerprint(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def scan_result(item: ScanItem, *, created: bool = True) -> ScanResult:
    """The submitter's view of an item."""
    result = item.result or {}
    return ScanResult(
        item_id=item.id,
        status=item.status,
        mode=item.mode,
        outcome=item.outcome,
        priority=item.priority,
        matches=tuple(PublicMatch(m["bank"], m["signal"]) for m in result.get("matches", [])),
        actions=tuple(result.get("actions", [])),
        personal_details=tuple(result.get("personal_details", [])),
        error_code=item.error_code,
        error_detail=item.error_detail,
        created=created,
        evidence_item_id=item.evidence_item_id,
    )


@dataclass(frozen=True, slots=True)
class _PlannedScan:
    """One hash scan decided by :meth:`PipelineService.plan_hash_scans`, not yet written."""

    item: ScanItem
    query: MatchQuery
    context: ScanContext
    decision: Decision
    actions: tuple[str, ...]
    matches: Sequence[MatchResult]


@dataclass(frozen=True, slots=True)
class HashScanPlan:
    """Hash scans matched and decided in a read, for :meth:`PipelineService.write_hash_scans`
    to write: the answers in the submissions' order, and the new items among them."""

    submissions: tuple[tuple[HashSubmission, str | None], ...]
    key: KeyInfo | None
    answers: tuple[ScanResult | RedressError, ...]
    decided: tuple[_PlannedScan, ...]


class PipelineService:
    """The rules of hash -> match -> policy -> outcome; works in a session it is given."""

    def __init__(
        self,
        *,
        matcher: Matcher,
        hasher: Hasher | None,
        policy: Policy,
        classifier: MediaClassifier | None = None,
        pdq_quality_min: int = 50,
        max_attempts: int = 3,
        clock: Clock = utcnow,
        evidence: EvidenceFactory | None = None,
    ) -> None:
        self.matcher = matcher
        self.hasher = hasher
        self.policy = policy
        self.classifier = classifier
        self.pdq_quality_min = pdq_quality_min
        self.max_attempts = max_attempts
        self.clock = clock
        self.evidence = evidence

    # -- accepting -------------------------------------------------------------------------

    def _check_banks(self, session: Session, banks: Sequence[str]) -> None:
        for bank in banks:
            if not self.matcher.bank_exists(session, bank):
                raise UnknownBankError(f"no bank named {bank!r}")

    def _prepare(
        self,
        submission: HashSubmission | MediaSubmission,
        key: KeyInfo | None,
        idempotency_key: str | None,
    ) -> ScanItem:
        """A new, not yet stored item for a submission, with its request fingerprint."""
        context = submission.context
        if isinstance(submission, MediaSubmission):
            mode = "media"
            request: dict[str, Any] = {"context": context.to_json()}
            fingerprint = _fingerprint(
                {"media": hashlib.sha256(submission.data).hexdigest(), **request}
            )
        else:
            mode = "hashes"
            request = {"context": context.to_json(), "query": _query_json(submission.query)}
            fingerprint = _fingerprint(request)
        return ScanItem(
            id=uuid.uuid4().hex,
            api_key_id=key.id if key is not None else None,
            idempotency_scope=f"key:{key.id}" if key is not None else "local",
            idempotency_key=idempotency_key,
            request_sha256=fingerprint,
            mode=mode,
            source=context.source,
            status=QUEUED,
            attempts=0,
            created_at=self.clock(),
            filename=submission.filename if isinstance(submission, MediaSubmission) else None,
            request=request,
            callback_url=context.callback_url,
        )

    def accept(
        self,
        session: Session,
        submission: HashSubmission | MediaSubmission,
        *,
        key: KeyInfo | None,
        idempotency_key: str | None,
    ) -> tuple[ScanItem, bool]:
        """Record an item as queued (media spooled in the database); return it and whether
        it is new. An item already accepted under the same idempotency key is returned
        as it is; the same key with a different request is an
        :class:`IdempotencyConflictError`."""
        self._check_banks(session, submission.context.banks)
        item = self._prepare(submission, key, idempotency_key)
        store = ScanStore(session)
        scope, fingerprint = item.idempotency_scope, item.request_sha256
        if idempotency_key is not None:
            existing = store.by_idempotency(scope, idempotency_key)
            if existing is not None:
                if existing.request_sha256 != fingerprint:
                    raise IdempotencyConflictError(
                        "this Idempotency-Key was used for a different request"
                    )
                return existing, False

        def add() -> ScanItem:
            # Media is decided later, in another transaction: nothing here changes the
            # item again, so it need not be tracked. A hash scan is decided right after.
            if isinstance(submission, MediaSubmission):
                return store.add_queued(item, submission.data)
            return store.add(item)

        if idempotency_key is None:
            return add(), True  # nothing to race on: no savepoint needed
        try:
            with session.begin_nested():
                add()
        except IntegrityError:
            # A concurrent request with the same idempotency key won the race.
            existing = store.by_idempotency(scope, idempotency_key)
            if existing is None:
                raise
            if existing.request_sha256 != fingerprint:
                raise IdempotencyConflictError(
                    "this Idempotency-Key was used for a different request"
                ) from None
            return existing, False
        return item, True

    def scan_hashes(
        self,
        session: Session,
        submission: HashSubmission,
        *,
        key: KeyInfo | None,
        idempotency_key: str | None = None,
    ) -> ScanResult:
        """A synchronous scan by hashes: match, decide and record (one INSERT for the item)
        in the caller's transaction. Raises the item's error, if it has one."""
        (answer,) = self.scan_hashes_many(session, [(submission, idempotency_key)], key=key)
        if isinstance(answer, RedressError):
            raise answer
        return answer

    def _scan_one(
        self,
        session: Session,
        submission: HashSubmission,
        *,
        key: KeyInfo | None,
        idempotency_key: str | None = None,
    ) -> ScanResult:
        # Accept first, then decide: the path that resolves idempotency-key races.
        item, created = self.accept(session, submission, key=key, idempotency_key=idempotency_key)
        if created:
            query = MatchQuery(
                pdq=submission.query.pdq,
                md5=submission.query.md5,
                sha256=submission.query.sha256,
                vpdq=submission.query.vpdq,
                banks=submission.context.banks,
            )
            self.decide(session, item, query, submission.context, steps=[])
        return scan_result(item, created=created)

    # -- deciding --------------------------------------------------------------------------

    def query_for(
        self, digest: MediaDigest, banks: tuple[str, ...]
    ) -> tuple[MatchQuery, list[str]]:
        """The match query for hashed media, leaving out hashes too weak to match on."""
        notes: list[str] = []
        pdq: tuple[PdqHash, ...] = ()
        if digest.pdq is not None:
            if digest.hashable and digest.pdq.quality >= self.pdq_quality_min:
                pdq = (digest.pdq,)
            else:
                notes.append("pdq_not_hashable_reliably")
        frames, trimmed = (
            tuple(
                VpdqQueryFrame(f.pdq, f.quality, f.ts)
                for f in source
                if f.quality >= self.pdq_quality_min
            )
            for source in (digest.vpdq, digest.vpdq_trimmed)
        )
        return (
            MatchQuery(
                pdq=pdq,
                md5=digest.md5,
                sha256=digest.sha256,
                vpdq=frames,
                vpdq_trimmed=trimmed,
                banks=banks,
                # Derived hashes are quality-gated one by one: a screenshot whose
                # whole hash is too weak may hold a photo whose hash is not.
                robust=tuple(digest.robust),
            ),
            notes,
        )

    def match_many(
        self,
        session: Session,
        batch: Sequence[tuple[ScanItem, MatchQuery, ScanContext]],
    ) -> list[Sequence[MatchResult]]:
        """The matches of a batch of items, with one matcher call (empty queries match
        nothing); each item that is a sighting is recorded in the seen-media history."""
        found = self.find_many(session, [query for _, query, _ in batch])
        self.record_sightings(session, batch, found)
        return found

    def find_many(
        self, session: Session, queries: Sequence[MatchQuery]
    ) -> list[Sequence[MatchResult]]:
        """:meth:`match_many` without the recording: reads only, so an edge can run it
        before it takes the write gate."""
        wanted = [n for n, query in enumerate(queries) if not query.empty]
        found: list[Sequence[MatchResult]] = [() for _ in queries]
        if wanted:
            answers = self.matcher.find_many(session, [queries[n] for n in wanted])
            for n, matches in zip(wanted, answers, strict=True):
                found[n] = matches
        return found

    def record_sightings(
        self,
        session: Session,
        batch: Sequence[tuple[ScanItem, MatchQuery, ScanContext]],
        found: Sequence[Sequence[MatchResult]],
    ) -> None:
        """The recording half of :meth:`match_many`, for what :meth:`find_many` found."""
        wanted = [n for n, (_, query, _) in enumerate(batch) if not query.empty]
        if wanted:
            self.matcher.record_many(
                session,
                [batch[n][1] for n in wanted],
                [batch[n][2].target for n in wanted],
                [self._sighted(batch[n][0], batch[n][2]) for n in wanted],
                [found[n] for n in wanted],
            )

    def decide(
        self,
        session: Session,
        item: ScanItem,
        query: MatchQuery,
        context: ScanContext,
        *,
        steps: list[dict[str, Any]],
        data: bytes | None = None,
        digest: MediaDigest | None = None,
        matches: Sequence[MatchResult] | None = None,
        drop_media: bool = True,
        events: list[EntryDraft] | None = None,
    ) -> Decision:
        """Match (unless ``matches`` are given), apply the policy and record the outcome
        and its outbox actions on ``item``; the spooled media is deleted, unless the
        caller does it for a whole batch (``drop_media=False``) in the same transaction;
        likewise the ledger entries, collected in ``events`` (see :meth:`preserve`)."""
        decision, actions = self.evaluate(
            session, item, query, context, steps=steps, data=data, digest=digest, matches=matches
        )
        # Preserve before any action is written: an act outcome must never delete
        # something that was not captured, and the spool is dropped just below.
        self.preserve(session, item, context, decision, data=data, digest=digest, events=events)
        store = ScanStore(session)
        for action in actions:
            store.add_action(item.id, action, item.finished_at or self.clock())
        if item.mode == "media" and drop_media:
            store.drop_media(item.id)
        session.flush()
        return decision

    def evaluate(
        self,
        session: Session,
        item: ScanItem,
        query: MatchQuery,
        context: ScanContext,
        *,
        steps: list[dict[str, Any]],
        data: bytes | None = None,
        digest: MediaDigest | None = None,
        matches: Sequence[MatchResult] | None = None,
    ) -> tuple[Decision, list[str]]:
        """Match (unless a batch already did: ``matches``, from :meth:`match_many`) and
        apply the policy; set the outcome on ``item`` (stored or not) and return the
        decision and the outbox action kinds the caller must write."""
        now = self.clock()
        if matches is None:
            matches = (
                self.matcher.match(
                    session, query, context.target, record=self._sighted(item, context)
                )
                if not query.empty
                else ()
            )
        if query.banks:
            matches = [m for m in matches if m.bank_name in query.banks]
        steps.append(
            {
                "step": "match",
                "at": now.isoformat(),
                "candidates": [
                    {
                        "bank": m.bank_name,
                        "purpose": m.bank_purpose.value,
                        "entry": m.entry_id,
                        "cases": list(m.case_ids),
                        "signal": m.signal.value,
                        "distance": m.distance,
                        # A near miss local features confirmed: the moderator is told
                        # why a distance beyond the threshold was matched at all.
                        **({"verified": True} if m.verified else {}),
                    }
                    for m in matches
                ],
            }
        )
        details = tuple(find_personal_details(context.caption)) if context.caption else ()
        classifier = None
        if self.classifier is not None and data is not None and digest is not None and not matches:
            classifier = self.classifier.classify(data, digest)
            steps.append({"step": "classifier", "name": self.classifier.name, **asdict(classifier)})
        decision = self.policy.decide(
            matches,
            PolicySignals(
                source=context.source,
                reporters=context.reporters,
                trusted_flagger=context.trusted_flagger,
                personal_details=details,
                classifier=classifier,
            ),
        )
        steps.append(
            {
                "step": "policy",
                "outcome": decision.outcome.value,
                "priority": decision.priority,
                "reasons": list(decision.reasons),
                "actions": [a.value for a in decision.actions],
            }
        )
        actions = [a.value for a in decision.actions]
        if ActionKind.WEBHOOK.value in actions and not item.callback_url:
            actions.remove(ActionKind.WEBHOOK.value)  # nowhere to send it
        seen: dict[tuple[str, str], None] = {}
        for m in matches:
            seen[(m.bank_name, m.signal.value)] = None
        item.outcome = decision.outcome.value
        item.priority = decision.priority
        item.status = DONE
        item.finished_at = now
        item.result = {
            "matches": [{"bank": b, "signal": sig} for b, sig in seen],
            "actions": actions,
            "personal_details": sorted({d.kind.value for d in details}),
        }
        steps.append({"step": "outcome", "at": now.isoformat(), "outcome": decision.outcome.value})
        item.steps = steps
        return decision, actions

    def scan_hashes_many(
        self,
        session: Session,
        submissions: Sequence[tuple[HashSubmission, str | None]],
        *,
        key: KeyInfo | None,
    ) -> list[ScanResult | RedressError]:
        """Synchronous scans of many hash submissions (each with its own idempotency key),
        written together: one multi-row INSERT for the items and one for their actions.
        A bad item gets its error in its place; the others carry on.

        :meth:`plan_hash_scans` then :meth:`write_hash_scans` in one transaction; an edge
        that holds a write gate (SQLite) calls them in two, so that matching runs
        outside the gate."""
        return self.write_hash_scans(session, self.plan_hash_scans(session, submissions, key=key))

    def plan_hash_scans(
        self,
        session: Session,
        submissions: Sequence[tuple[HashSubmission, str | None]],
        *,
        key: KeyInfo | None,
    ) -> HashScanPlan:
        """Match and decide hash submissions, reading only: the answers and what
        :meth:`write_hash_scans` must write for them. The matches are those of this
        read; an idempotency key another request takes before the write is caught
        there (the batch is then scanned again, one by one)."""
        store = ScanStore(session)
        scope = f"key:{key.id}" if key is not None else "local"
        wanted = [k for _, k in submissions if k is not None]
        known = store.by_idempotency_many(scope, wanted) if wanted else {}
        banks_ok: dict[str, bool] = {}
        answers: list[ScanResult | RedressError | None] = []  # None: decided below
        decided: list[_PlannedScan] = []
        pending: list[tuple[ScanItem, MatchQuery, ScanContext] | None] = []
        replays: dict[int, ScanItem] = {}
        failed: dict[str, RedressError] = {}
        for submission, idem in submissions:
            try:
                for bank in submission.context.banks:
                    if bank not in banks_ok:
                        banks_ok[bank] = self.matcher.bank_exists(session, bank)
                    if not banks_ok[bank]:
                        raise UnknownBankError(f"no bank named {bank!r}")
                item = self._prepare(submission, key, idem)
                existing = known.get(idem) if idem is not None else None
                if existing is not None:
                    if existing.request_sha256 != item.request_sha256:
                        raise IdempotencyConflictError(
                            "this Idempotency-Key was used for a different request"
                        )
                    answers.append(scan_result(existing, created=False))
                    pending.append(None)
                    replays[len(answers) - 1] = existing  # may be decided later in this batch
                    continue
            except RedressError as exc:
                answers.append(exc)
                pending.append(None)
                continue
            if idem is not None:
                known[idem] = item
            query = MatchQuery(
                pdq=submission.query.pdq,
                md5=submission.query.md5,
                sha256=submission.query.sha256,
                vpdq=submission.query.vpdq,
                banks=submission.context.banks,
            )
            answers.append(None)
            pending.append((item, query, submission.context))
        batch = [p for p in pending if p is not None]
        try:
            found: list[Sequence[MatchResult] | None] = list(
                self.find_many(session, [query for _, query, _ in batch])
            )
        except RedressError:
            found = [None] * len(batch)  # match one by one below, each with its own error
        matched = iter(found)
        for n, entry in enumerate(pending):
            if entry is None:
                continue
            item, query, context = entry
            matches = next(matched)
            try:
                if matches is None:
                    (matches,) = self.find_many(session, [query])
                decision, actions = self.evaluate(
                    session, item, query, context, steps=[], matches=matches
                )
            except RedressError as exc:
                answers[n] = failed[item.id] = exc
                continue
            decided.append(_PlannedScan(item, query, context, decision, tuple(actions), matches))
            answers[n] = scan_result(item)
        for n, existing in replays.items():
            answers[n] = failed.get(existing.id) or scan_result(existing, created=False)
        done: list[ScanResult | RedressError] = []
        for answer in answers:
            assert answer is not None  # every pending item was decided or failed above
            done.append(answer)
        return HashScanPlan(tuple(submissions), key, tuple(done), tuple(decided))

    def write_hash_scans(
        self, session: Session, plan: HashScanPlan
    ) -> list[ScanResult | RedressError]:
        """Write what :meth:`plan_hash_scans` decided (the items, their actions, sightings
        and ledger entries) and return the answers. If a concurrent request took one of
        the idempotency keys meanwhile, every item is scanned again, one by one."""
        if not plan.decided:
            return list(plan.answers)
        store = ScanStore(session)
        fresh = [p.item for p in plan.decided]
        # Only an idempotency key can collide with a concurrent request (item IDs are
        # random): without one, no savepoint is needed to recover from a race.
        guard = (
            session.begin_nested()
            if any(i.idempotency_key is not None for i in fresh)
            else contextlib.nullcontext()
        )
        try:
            with guard:
                # Bulk INSERTs, not the unit of work: the items are answered from the
                # objects above and never change again in this transaction (a hash
                # scan has no bytes to capture), so tracking them costs for nothing.
                store.insert_items(fresh)
                store.insert_actions(
                    [(p.item.id, a) for p in plan.decided for a in p.actions], self.clock()
                )
        except IntegrityError:
            # A concurrent request took one of the idempotency keys: go one by one.
            return [
                a if isinstance(a, RedressError) else self._rescan(session, s, plan.key, i)
                for (s, i), a in zip(plan.submissions, plan.answers, strict=True)
            ]
        self.record_sightings(
            session,
            [(p.item, p.query, p.context) for p in plan.decided],
            [p.matches for p in plan.decided],
        )
        # Logged once the items are in: a batch that fell back above logs per item.
        events: list[EntryDraft] = []
        recorders: dict[int, EvidenceRecorder] = {}
        for p in plan.decided:
            self.preserve(
                session, p.item, p.context, p.decision, recorders=recorders, events=events
            )
        self.record_events(session, events, recorders)
        return list(plan.answers)

    def _rescan(
        self, session: Session, submission: HashSubmission, key: KeyInfo | None, idem: str | None
    ) -> ScanResult | RedressError:
        try:
            with session.begin_nested():
                return self._scan_one(session, submission, key=key, idempotency_key=idem)
        except RedressError as exc:
            return exc

    # -- evidence --------------------------------------------------------------------------

    def preserve(
        self,
        session: Session,
        item: ScanItem,
        context: ScanContext,
        decision: Decision,
        *,
        data: bytes | None = None,
        digest: MediaDigest | None = None,
        recorders: dict[int, EvidenceRecorder] | None = None,
        events: list[EntryDraft] | None = None,
    ) -> list[str]:
        """Capture a matched or reported item's bytes as evidence and log the decision.

        One evidence item per victim case among the matches (so one victim's
        withdrawal erases her copy and no other), or one without a case when no
        match names a case. The trigger (bank, entry, distance) is kept apart from
        the evidence facts (the message as the platform showed it). Review and act
        decisions are appended to the evidence ledger (``pipeline:scan:decided``),
        against each captured item. Runs in the decision's transaction, so a retried
        item is either fully preserved once or not at all. Returns the item IDs.
        ``recorders`` lets a batch share one recorder per session; ``events`` collects the
        decision entries for the batch to append at once (:meth:`record_events`), last:
        the ledger's head stays locked from an append until the commit, and on
        PostgreSQL every other deciding transaction queues behind it.
        """
        if self.evidence is None:
            return []
        candidates: list[dict[str, Any]] = next(
            (
                s.get("candidates", [])
                for s in reversed(item.steps or [])
                if s.get("step") == "match"
            ),
            [],
        )
        if decision.outcome is Outcome.IGNORE and not candidates and not context.reporters:
            return []  # nothing matched, nothing reported: not a decision about anyone
        captured: list[dict[str, Any]] = []
        if data is not None and (candidates or context.reporters):
            recorder = self._recorder(session, recorders)
            for trigger in self._triggers(item, context, candidates):
                evidence = recorder.capture(
                    CaptureRequest(
                        content=data,
                        media_type=str(getattr(digest, "media_type", "") or "")
                        or "application/octet-stream",
                        message=_message_facts(context),
                        trigger=trigger,
                        connector=(context.sighting.connector if context.sighting else None)
                        or context.source,
                        operator=context.source,
                        file_name=item.filename,
                    )
                )
                captured.append({"id": evidence.id, "case": trigger.case_id})
        if captured:
            item.evidence_item_id = captured[0]["id"]
            item.steps = [*(item.steps or []), {"step": "evidence", "items": captured}]
        facts: dict[str, Any] = {
            "scan_item": item.id,
            "source": context.source,
            "mode": item.mode,
            "outcome": decision.outcome.value,
            "priority": decision.priority,
            "reasons": list(decision.reasons),
            "actions": list((item.result or {}).get("actions", [])),
            "matches": [
                {
                    "bank": c["bank"],
                    "entry": c["entry"],
                    "signal": c["signal"],
                    "distance": c["distance"],
                }
                for c in candidates
            ],
            "evidence_items": [c["id"] for c in captured],
        }
        drafts = [
            EntryDraft("pipeline:scan:decided", "pipeline", facts, evidence_id)
            for evidence_id in [c["id"] for c in captured] or [None]
        ]
        if events is not None:
            events.extend(drafts)
        else:
            self._recorder(session, recorders).record_events(drafts)
        return [c["id"] for c in captured]

    def _recorder(
        self, session: Session, recorders: dict[int, EvidenceRecorder] | None
    ) -> EvidenceRecorder:
        """The session's recorder, built (keys loaded, signer made) once per batch when
        ``recorders`` is given; only asked for when there is something to write."""
        assert self.evidence is not None
        recorder = recorders.get(id(session)) if recorders is not None else None
        if recorder is None:
            recorder = self.evidence(session)
            if recorders is not None:
                recorders[id(session)] = recorder
        return recorder

    def record_events(
        self,
        session: Session,
        events: Sequence[EntryDraft],
        recorders: dict[int, EvidenceRecorder] | None = None,
    ) -> None:
        """Append a batch's decision entries (collected by :meth:`preserve`) at once."""
        if self.evidence is None or not events:
            return
        self._recorder(session, recorders).record_events(events)

    @staticmethod
    def _triggers(
        item: ScanItem, context: ScanContext, candidates: Sequence[Mapping[str, Any]]
    ) -> list[Trigger]:
        if not candidates:
            return [
                Trigger(
                    TriggerKind.REPORT,
                    reference=item.id,
                    details={"scan_item": item.id, "reporters": context.reporters},
                )
            ]
        by_case: dict[str | None, list[Mapping[str, Any]]] = {}
        for candidate in candidates:  # nearest first
            for case in candidate.get("cases") or [None]:
                key = None if case is None else case_key(int(case))
                by_case.setdefault(key, []).append(candidate)
        triggers = []
        for case, matched in by_case.items():
            best = matched[0]
            triggers.append(
                Trigger(
                    TriggerKind.MATCH,
                    reference=item.id,
                    case_id=case,
                    bank=str(best["bank"]),
                    distance=int(best["distance"]),
                    details={
                        "scan_item": item.id,
                        "entry": best["entry"],
                        "signal": best["signal"],
                        "purpose": best["purpose"],
                        "matches": [
                            {
                                "bank": m["bank"],
                                "entry": m["entry"],
                                "signal": m["signal"],
                                "distance": m["distance"],
                            }
                            for m in matched
                        ],
                    },
                )
            )
        return triggers

    @staticmethod
    def _sighted(item: ScanItem, context: ScanContext) -> bool:
        # Media was seen somewhere; a hash lookup is a sighting only when it says where
        # (a helpline checking a victim's hash has not seen the image on a platform).
        target = context.target
        return item.mode == "media" or any(
            (target.platform, target.chat_id, target.message_id, target.user_id)
        )

    def dead_letter(self, session: Session, item: ScanItem, code: str, detail: str) -> None:
        """Finish an item that cannot be processed, with the reason (it never blocks others)."""
        item.status = DEAD
        item.error_code = code
        item.error_detail = detail[:2000]
        item.finished_at = self.clock()
        ScanStore(session).drop_media(item.id)
        session.flush()


@dataclass(frozen=True, slots=True)
class ProcessReport:
    """What :meth:`ScanRunner.process` did with one item."""

    item_id: str
    # done, dead, skipped (already finished), busy (leased elsewhere), failed (left
    # queued after an error; retried once its lease runs out), deferred (the evidence
    # disk is full: the item stays queued and is retried after ``retry_after``)
    status: str
    outcome: str | None = None
    seconds: float = 0.0
    retry_after: float = 0.0


@dataclass(frozen=True, slots=True)
class _Work:
    """A leased item, read in the lease's transaction."""

    item_id: str
    mode: str
    filename: str | None
    request: dict[str, Any]
    data: bytes | None


@dataclass(frozen=True, slots=True)
class _Hashed:
    """A leased item after hashing: its query, or why it has none."""

    work: _Work
    context: ScanContext
    query: MatchQuery | None
    steps: list[dict[str, Any]]
    digest: MediaDigest | None
    failure: RedressError | None


class ScanRunner:
    """The edge for queued items (embedded queue thread or Celery task): owns transactions."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        service: PipelineService,
        *,
        actioners: Mapping[ActionKind, Actioner] | None = None,
        webhooks: WebhookSender | None = None,
        lease_seconds: float = 120.0,
        writes: AbstractContextManager[Any] | None = None,
        defer_seconds: float = 10.0,
        match_before_gate: bool = False,
    ) -> None:
        self.sessions = sessions
        self.defer_seconds = defer_seconds
        # Held around each write transaction (the SQLite write gate, see
        # PipelineContainer.writes); nothing to hold on PostgreSQL.
        self.writes = writes if writes is not None else contextlib.nullcontext()
        # Match in a read of its own before taking the gate: pays where other processes
        # wait on the gate; in one process (or on PostgreSQL) it only adds a transaction.
        self.match_before_gate = match_before_gate
        self.service = service
        self.actioners = dict(actioners or {})
        self.webhooks = webhooks
        self.lease_seconds = lease_seconds

    def process(self, item_id: str) -> ProcessReport:
        """Process one queued item to exactly one outcome (or a dead letter).

        Safe to call twice for the same item, concurrently or after a crash: the item
        is leased and the attempt counted first (so an item that kills its worker ends
        as a dead letter after ``max_attempts``, and a duplicate delivery during the
        lease answers ``busy`` without counting), and the decision is written under a
        row lock only if the item is still queued.
        """
        return self.process_many([item_id])[0]

    def process_many(self, item_ids: Sequence[str]) -> list[ProcessReport]:
        """:meth:`process` for a batch, with the same guarantees, in two transactions
        for all of it: one leases every item (counting its attempt), one decides every
        item that was hashed (one matcher call), under row locks. Hashing runs between
        them, outside any transaction. Returns a report per ID, in order.

        Only items on their first attempt are leased together. An item that was tried
        before (its worker crashed or failed while it was leased) is leased and
        processed on its own, so an item that kills its worker costs the others of
        its batch one attempt, never more, and alone reaches ``max_attempts`` and the
        dead letters. If deciding a batch fails, each item is decided in its own
        transaction; one that fails again is left queued (reported ``failed``; its
        lease runs out and the sweep retries it).
        """
        wanted = list(dict.fromkeys(item_ids))
        if len(wanted) == 1:
            reports = self._process(wanted, first_attempts_only=False)
        else:
            reports = self._process(wanted, first_attempts_only=True)
            for item_id in wanted:
                if item_id in reports:
                    continue
                try:  # tried before, or leased elsewhere: alone, under its own lease
                    reports.update(self._process([item_id], first_attempts_only=False))
                except Exception:  # one bad item must not stop the rest of the batch
                    log.exception("processing %s failed", item_id)
                    reports[item_id] = ProcessReport(item_id, "failed")
        return [reports[i] for i in item_ids]

    def _process(
        self, item_ids: list[str], *, first_attempts_only: bool
    ) -> dict[str, ProcessReport]:
        started = time.perf_counter()
        now = self.service.clock()
        reports: dict[str, ProcessReport] = {}
        work: list[_Work] = []
        with self.writes, self.sessions.begin() as session:
            store = ScanStore(session)
            leases = store.lease_many(
                item_ids,
                now,
                now + dt.timedelta(seconds=self.lease_seconds),
                first_attempts_only=first_attempts_only,
            )
            leased = [i for i in item_ids if leases.get(i, ("", 0))[0] == "leased"]
            items = store.get_many(leased) if leased else {}
            media = store.media_many([i for i in leased if items[i].mode == "media"])
            for item_id, (state, attempts) in leases.items():
                if state == "busy":
                    reports[item_id] = ProcessReport(
                        item_id, "busy", retry_after=self.lease_seconds
                    )
                    continue
                if state != "leased":
                    reports[item_id] = ProcessReport(item_id, "skipped")
                    continue
                item = items[item_id]
                if attempts > self.service.max_attempts:
                    self.service.dead_letter(
                        session,
                        item,
                        "too_many_attempts",
                        f"processing failed or crashed {attempts - 1} times",
                    )
                    reports[item_id] = ProcessReport(
                        item_id, DEAD, seconds=time.perf_counter() - started
                    )
                    continue
                work.append(
                    _Work(item_id, item.mode, item.filename, dict(item.request), media.get(item_id))
                )
        if work:
            reports.update(self._decide([self._hash(w) for w in work], started))
        return reports

    def _hash(self, work: _Work) -> _Hashed:
        """Hash a leased item outside any transaction (or note why it cannot be)."""
        context = ScanContext.from_json(work.request.get("context", {}))
        steps: list[dict[str, Any]] = []
        try:
            if work.mode == "media":
                if work.data is None:
                    raise RedressError("spooled media is missing", code="media_missing")
                if self.service.hasher is None:
                    raise RedressError("no hasher configured", code="configuration_error")
                digest = self.service.hasher.hash_bytes(work.data, work.filename)
                query, notes = self.service.query_for(digest, context.banks)
                picture = self.service.hasher.picture(work.data, digest)
                if picture is not None:
                    query = replace(query, picture=picture)
                steps.append(
                    {
                        "step": "hash",
                        "kind": digest.kind,
                        "sha256": digest.sha256,
                        "md5": digest.md5,
                        "size": digest.size,
                        "pdq": digest.pdq.hex if digest.pdq is not None else None,
                        "quality": digest.pdq.quality if digest.pdq is not None else None,
                        "vpdq_frames": len(digest.vpdq),
                        "notes": notes,
                    }
                )
                return _Hashed(work, context, query, steps, digest, None)
            query = _query_from_json(work.request.get("query", {}), context.banks)
            return _Hashed(work, context, query, steps, None, None)
        except RedressError as exc:
            return _Hashed(work, context, None, steps, None, exc)

    def _decide(self, batch: Sequence[_Hashed], started: float) -> dict[str, ProcessReport]:
        """Decide hashed items in one transaction (each on its own if that fails), then
        perform their follow-ups after the commit."""
        found = self._find(batch)
        try:
            with self.writes, self.sessions.begin() as session:
                reports, follow = self._decide_in(session, batch, started, found)
        except Exception as exc:
            if len(batch) == 1:
                if isinstance(exc, EvidenceStorageError):
                    item_id = batch[0].work.item_id
                    return {item_id: self._defer(item_id, exc, started)}
                raise
            if isinstance(exc, EvidenceStorageError):
                log.error("deciding a batch of %d items: %s; deciding each alone", len(batch), exc)
            else:
                log.exception(
                    "deciding a batch of %d items failed; deciding each alone", len(batch)
                )
            reports, follow = {}, []
            for one in batch:
                try:
                    with self.writes, self.sessions.begin() as session:
                        done, more = self._decide_in(session, [one], started, found)
                except EvidenceStorageError as full:
                    reports[one.work.item_id] = self._defer(one.work.item_id, full, started)
                    continue
                except Exception:  # left queued: its lease runs out and the sweep retries it
                    log.exception("processing %s failed", one.work.item_id)
                    continue
                reports.update(done)
                follow.extend(more)
        for item_id in follow:  # nothing to perform or send: no extra transaction
            if len(batch) == 1:
                self.after_commit(item_id)
                continue
            try:  # the decisions are committed: one failed follow-up must not stop the rest
                self.after_commit(item_id)
            except Exception:
                log.exception("follow-up of %s failed", item_id)
        # An item whose decision failed above has no report: say so, it stays queued.
        for one in batch:
            reports.setdefault(one.work.item_id, ProcessReport(one.work.item_id, "failed"))
        return reports

    def _find(self, batch: Sequence[_Hashed]) -> dict[str, Sequence[MatchResult]]:
        """What each hashed item matches, read before the write gate is taken (with
        ``match_before_gate``). Empty otherwise, or if the read fails: the decision then
        matches inside its own transaction."""
        hashed = [h for h in batch if h.query is not None]
        if not hashed or not self.match_before_gate:
            return {}
        try:
            with self.sessions.begin() as session:
                answers = self.service.find_many(
                    session, [h.query for h in hashed if h.query is not None]
                )
        except Exception:
            log.exception("matching %d items before deciding failed", len(hashed))
            return {}
        return {h.work.item_id: m for h, m in zip(hashed, answers, strict=True)}

    def _defer(self, item_id: str, exc: EvidenceStorageError, started: float) -> ProcessReport:
        """Give an item back, uncounted, when its evidence could not be written.

        The evidence disk is full: the decision rolled back with its ledger entries, and
        the item must not be dead-lettered (that would drop the only copy of bytes that
        must be preserved). It waits, queued, for space.
        """
        log.error("item %s deferred: %s", item_id, exc.message)
        retry_at = self.service.clock() + dt.timedelta(seconds=self.defer_seconds)
        with self.writes, self.sessions.begin() as session:
            ScanStore(session).release(item_id, retry_at)
        return ProcessReport(
            item_id,
            DEFERRED,
            seconds=time.perf_counter() - started,
            retry_after=self.defer_seconds,
        )

    def _decide_in(
        self,
        session: Session,
        batch: Sequence[_Hashed],
        started: float,
        found: Mapping[str, Sequence[MatchResult]],
    ) -> tuple[dict[str, ProcessReport], list[str]]:
        store = ScanStore(session)
        locked = store.get_many([h.work.item_id for h in batch], lock=True)
        reports: dict[str, ProcessReport] = {}
        ready: list[tuple[_Hashed, ScanItem]] = []
        for hashed in batch:
            item_id = hashed.work.item_id
            item = locked.get(item_id)
            if item is None or item.status != QUEUED:
                reports[item_id] = ProcessReport(item_id, "skipped")
            elif hashed.failure is not None or hashed.query is None:
                failure = hashed.failure or RedressError("nothing to match", code="hash_failed")
                self.service.dead_letter(session, item, failure.code, failure.message)
                reports[item_id] = ProcessReport(
                    item_id, DEAD, seconds=time.perf_counter() - started
                )
            else:
                ready.append((hashed, item))
        deciding = [(item, h.query, h.context) for h, item in ready if h.query is not None]
        if all(h.work.item_id in found for h, _ in ready):
            matched: list[Sequence[MatchResult]] = [found[h.work.item_id] for h, _ in ready]
            self.service.record_sightings(session, deciding, matched)
        else:
            matched = self.service.match_many(session, deciding)
        follow: list[str] = []
        events: list[EntryDraft] = []
        for (hashed, item), matches in zip(ready, matched, strict=True):
            assert hashed.query is not None
            decision = self.service.decide(
                session,
                item,
                hashed.query,
                hashed.context,
                steps=list(hashed.steps),  # a copy: a failed batch must not leave its steps
                data=hashed.work.data,
                digest=hashed.digest,
                matches=matches,
                drop_media=False,  # below, for the whole batch
                events=events,  # below, for the whole batch
            )
            reports[item.id] = ProcessReport(
                item.id, DONE, decision.outcome.value, time.perf_counter() - started
            )
            if item.callback_url or (item.result or {}).get("actions"):
                follow.append(item.id)
        # Redress keeps hashes, not media: the decided items' spooled bytes go now.
        store.drop_media_many([item.id for _, item in ready if item.mode == "media"])
        self.service.record_events(session, events)
        session.flush()
        return reports, follow

    def after_commit(self, item_id: str) -> None:
        """Perform the item's outbox actions that have an actioner here, and send the
        job's webhook callback. Each action is claimed before it runs, so it runs once."""
        with self.sessions.begin() as session:
            store = ScanStore(session)
            item = store.get(item_id)
            if item is None:
                return
            pending = [a for a in store.actions(item_id) if a.status == "pending"]
            secret: bytes | None = None
            if item.api_key_id is not None:
                key = session.get(ApiKey, item.api_key_id)
                secret = key.webhook_secret.encode() if key is not None else None
            result = scan_result(item)
            context = ScanContext.from_json(item.request.get("context", {}))
            callback_url = item.callback_url
            mode = item.mode
        for action in pending:
            kind = ActionKind(action.kind)
            runnable = kind in self.actioners or (
                kind is ActionKind.WEBHOOK and self.webhooks is not None
            )
            if not runnable:
                continue  # left pending in the outbox for a connector
            with self.writes, self.sessions.begin() as session:
                if not ScanStore(session).claim_action(action.id):
                    continue
            request = ActionRequest(
                action_id=action.id,
                kind=kind,
                item_id=item_id,
                source=context.source,
                target=context.target,
                reason=f"outcome act: {', '.join(m.bank for m in result.matches)}",
                banks=tuple(m.bank for m in result.matches),
            )
            outcome = self._perform(request, callback_url, secret, result)
            with self.writes, self.sessions.begin() as session:
                ScanStore(session).finish_action(
                    action.id, outcome.ok, outcome.detail, self.service.clock()
                )
        if mode == "media" and callback_url and secret is not None and self.webhooks is not None:
            sent = self.webhooks.send(
                WebhookDelivery(
                    url=callback_url,
                    secret=secret,
                    event="scan.completed",
                    delivery_id=f"{item_id}:completed",
                    payload={"event": "scan.completed", "job": result_json(result)},
                )
            )
            if not sent.ok:
                log.warning("callback for %s failed: %s", item_id, sent.detail)

    def drain_outbox(self, actioner: Actioner, *, limit: int = 100) -> int:
        """Perform pending outbox actions of ``actioner.kind`` (oldest first), each claimed
        before it runs so that two connector processes never run the same one. For a
        connector in another process than the pipeline (the Telegram bot). Returns how
        many it ran."""
        with self.sessions.begin() as session:
            store = ScanStore(session)
            pending = store.pending_actions(actioner.kind.value, limit)
            requests = []
            for action in pending:
                item = store.get(action.item_id)
                if item is None:
                    continue
                result = scan_result(item)
                context = ScanContext.from_json(item.request.get("context", {}))
                requests.append(
                    ActionRequest(
                        action_id=action.id,
                        kind=actioner.kind,
                        item_id=item.id,
                        source=context.source,
                        target=context.target,
                        reason=f"outcome act: {', '.join(m.bank for m in result.matches)}",
                        banks=tuple(m.bank for m in result.matches),
                    )
                )
        ran = 0
        for request in requests:
            with self.sessions.begin() as session:
                if not ScanStore(session).claim_action(request.action_id):
                    continue
            try:
                outcome = actioner.perform(request)
            except RedressError as exc:
                outcome = ActionResult(ok=False, detail=f"{exc.code}: {exc.message}")
            with self.sessions.begin() as session:
                ScanStore(session).finish_action(
                    request.action_id, outcome.ok, outcome.detail, self.service.clock()
                )
            ran += 1
        return ran

    def _perform(
        self, request: ActionRequest, url: str | None, secret: bytes | None, result: ScanResult
    ) -> ActionResult:
        if request.kind is ActionKind.WEBHOOK:
            if self.webhooks is None or url is None or secret is None:
                return ActionResult(ok=False, detail="no callback URL or key secret")
            return self.webhooks.send(
                WebhookDelivery(
                    url=url,
                    secret=secret,
                    event="scan.action_required",
                    delivery_id=request.action_id,
                    payload={"event": "scan.action_required", "job": result_json(result)},
                )
            )
        try:
            return self.actioners[request.kind].perform(request)
        except RedressError as exc:
            return ActionResult(ok=False, detail=f"{exc.code}: {exc.message}")

    def recover(self) -> list[str]:
        """IDs of items accepted but unfinished (to re-queue after a restart)."""
        with self.sessions.begin() as session:
            return ScanStore(session).queued_ids()

    def stranded(self, cutoff: dt.datetime) -> list[str]:
        """IDs of items still queued that were accepted before ``cutoff``."""
        with self.sessions.begin() as session:
            return ScanStore(session).queued_ids(before=cutoff)


def _message_facts(context: ScanContext) -> MessageFacts:
    """The evidence's message facts from a scan's context (what the platform showed)."""
    target, sighting = context.target, context.sighting or SightingFacts()
    raw: dict[str, Any] | None = None
    if sighting.raw:
        try:
            parsed = json.loads(sighting.raw)
        except ValueError:
            parsed = None
        raw = parsed if isinstance(parsed, dict) else {"text": sighting.raw}
    return MessageFacts(
        platform=target.platform or context.source,
        chat_id=target.chat_id,
        chat_title=sighting.chat_title,
        message_id=target.message_id,
        message_link=sighting.message_link,
        sender_id=target.user_id,
        sender_name=sighting.sender_name,
        forward_origin=(
            {"description": sighting.forward_origin} if sighting.forward_origin else None
        ),
        message_date=sighting.message_date,
        edit_date=sighting.edit_date,
        content_protected=sighting.content_protected,
        caption=context.caption,
        raw=raw,
    )


def result_json(result: ScanResult) -> dict[str, Any]:
    """The JSON the API and webhooks show for a result."""
    return {
        "id": result.item_id,
        "status": result.status,
        "mode": result.mode,
        "outcome": result.outcome,
        "priority": result.priority,
        "matches": [{"bank": m.bank, "signal": m.signal} for m in result.matches],
        "actions": list(result.actions),
        "personal_details": list(result.personal_details),
        "error": (
            {"code": result.error_code, "detail": result.error_detail}
            if result.error_code
            else None
        ),
    }


__all__ = [
    "HashSubmission",
    "MediaSubmission",
    "Outcome",
    "PipelineService",
    "ProcessReport",
    "PublicMatch",
    "ScanContext",
    "ScanResult",
    "ScanRunner",
    "SightingFacts",
    "result_json",
    "scan_result",
]
