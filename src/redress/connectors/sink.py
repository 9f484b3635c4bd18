"""The :class:`MediaSink` over the real pipeline: what the Telegram bot and importer use.

Each :class:`~redress.connectors.interfaces.IncomingMedia` becomes a pipeline
:class:`~redress.pipeline.MediaSubmission` with a scan context (source, caption,
where it was seen, the message facts for evidence) and an idempotency key built
from the platform's identity of the item, so a re-delivered update or a second
import of the same export is answered from the first scan and never captured
twice. The pipeline's :class:`~redress.pipeline.ScanRunner` then hashes
(signals), matches (the store's matcher over the MIH index, following the
database), applies the policy and, for a matched or reported item, captures it
as evidence in the same transaction as the outcome. Only then does the sink
answer, so the connector deletes nothing that was not preserved.

The pipeline's ``delete_message`` and ``restrict_user`` outbox actions are
carried out by the connector itself after :meth:`PipelineSink.receive` returns;
:class:`ConnectorHandoff` marks them in the outbox as handed over, so no other
process picks them up.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from redress.actions.interfaces import (
    ActionKind as PipelineAction,
)
from redress.actions.interfaces import (
    ActionRequest,
    ActionResult,
    ActionTarget,
)
from redress.connectors.interfaces import (
    ActionKind,
    Decision,
    IncomingMedia,
    MediaOrigin,
    Outcome,
    TooLarge,
    UserReport,
)
from redress.errors import RedressError
from redress.pipeline.container import PipelineContainer
from redress.pipeline.models import ScanItem
from redress.pipeline.service import MediaSubmission, ScanContext, SightingFacts
from redress.pipeline.store import DEAD, QUEUED, ScanStore

_T = TypeVar("_T")
log = logging.getLogger(__name__)

# What a pipeline action means on a chat platform (the bot keeps only those the
# group's settings allow, and bans in preference to restricting when both are).
_CONNECTOR_ACTIONS: dict[str, tuple[ActionKind, ...]] = {
    PipelineAction.DELETE_MESSAGE.value: (ActionKind.DELETE_MESSAGE, ActionKind.POST_NOTICE),
    PipelineAction.RESTRICT_USER.value: (ActionKind.BAN_SENDER, ActionKind.RESTRICT_SENDER),
}


class ConnectorHandoff:
    """Outbox actioner for actions the connector performs itself, after the decision."""

    def __init__(self, kind: PipelineAction, connector: str) -> None:
        self.kind = kind
        self.connector = connector

    def perform(self, request: ActionRequest) -> ActionResult:
        """Mark the action as handed to the connector (its own records say how it went)."""
        return ActionResult(
            ok=True,
            detail=f"handed to the {self.connector} connector, which carries it out after "
            "the decision (see its records)",
        )


def handoff_actioners(connector: str) -> dict[PipelineAction, ConnectorHandoff]:
    """The actioners to build the pipeline with when a connector acts on its decisions."""
    return {
        kind: ConnectorHandoff(kind, connector)
        for kind in (PipelineAction.DELETE_MESSAGE, PipelineAction.RESTRICT_USER)
    }


class PipelineSink:
    """Hash, match, decide and preserve through the pipeline; answer with a :class:`Decision`.

    ``source`` names the connector in the pipeline (policy rules key on it, e.g. a
    ``[sources.telegram]`` cap); ``connector`` is recorded in the evidence.
    """

    def __init__(
        self,
        pipeline: PipelineContainer,
        *,
        source: str = "telegram",
        connector: str,
        workers: int | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.connector = connector
        # Hashing is CPU work and the pipeline's database calls block: they run in worker
        # threads, as many as there are cores, so the event loop stays free for the
        # connector's network traffic and more scans at once would only queue for CPU.
        self.workers = workers or os.cpu_count() or 1
        self._executor: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Stop the worker threads (after the scans in flight finish)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _in_worker(self, fn: Callable[..., _T], *args: Any) -> _T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="redress-sink")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def receive(self, media: IncomingMedia) -> Decision:
        """Scan one item; evidence is captured (when it matched) before this returns."""
        (answer,) = await self.receive_many([media])
        if isinstance(answer, RedressError):
            raise answer
        return answer

    async def receive_many(self, media: Sequence[IncomingMedia]) -> list[Decision | RedressError]:
        """Scan a batch of items; answer each, in order, with its :class:`Decision` or the
        :class:`RedressError` it raised (the others go on). Evidence for every match is
        captured before this returns.

        Per batch rather than per item: one transaction accepts every item (each under
        its idempotency key, so a re-delivered item is answered from its first scan), the
        pipeline leases and decides the new ones in two transactions per worker
        (:meth:`ScanRunner.process_many`; hashing, which releases the GIL in the decoder
        and the C PDQ, runs on every worker at once), and one read answers them all.
        Per item, that is a third of the transactions and SQL round trips of scanning
        items one by one.
        """
        return await self._scan_many(media, reporters=0)

    async def report(self, report: UserReport) -> str:
        """Scan and preserve each reported item (trigger: report), log the report in the
        evidence ledger, and return the ledger entry's reference."""
        fetched = [m for m in report.media if isinstance(m.content, bytes)]
        answers = await self._scan_many(fetched, reporters=1) if fetched else []
        items = [a.evidence_ref for a in answers if isinstance(a, Decision) and a.evidence_ref]
        return await self._in_worker(self._file_report, report, items)

    async def _scan_many(
        self, media: Sequence[IncomingMedia], reporters: int
    ) -> list[Decision | RedressError]:
        answers: list[Decision | RedressError | None] = [None] * len(media)
        fetched: list[int] = []
        for n, item in enumerate(media):
            if isinstance(item.content, TooLarge):
                answers[n] = Decision(Outcome.REVIEW, reason=f"not fetched: {item.content.reason}")
            else:
                fetched.append(n)
        if fetched:
            accepted = await self._in_worker(
                self._accept_many, [media[n] for n in fetched], reporters
            )
            queued = list(
                dict.fromkeys(a[0] for a in accepted if isinstance(a, tuple) and a[1] == QUEUED)
            )
            failed: dict[str, RedressError] = {}
            if queued:  # contiguous shares, one per worker: their hashing runs side by side
                share = -(-len(queued) // self.workers)
                parts = [queued[k : k + share] for k in range(0, len(queued), share)]
                for part_failed in await asyncio.gather(
                    *(self._in_worker(self._process, part) for part in parts)
                ):
                    failed.update(part_failed)
            ids = [a[0] for a in accepted if isinstance(a, tuple)]
            done = await self._in_worker(self._decisions, ids) if ids else {}
            for n, answer in zip(fetched, accepted, strict=True):
                if isinstance(answer, RedressError):
                    answers[n] = answer
                else:
                    answers[n] = failed.get(answer[0]) or done[answer[0]]
        return [a for a in answers if a is not None]

    # -- synchronous work, in a worker thread --------------------------------------------------

    def context(self, media: IncomingMedia, reporters: int = 0) -> ScanContext:
        """The pipeline's scan context for one item (where it was seen, what it showed)."""
        message = media.message
        sender = message.sender
        return ScanContext(
            source=self.source,
            caption=message.caption,
            reporters=reporters,
            target=ActionTarget(
                platform=message.platform,
                chat_id=str(message.chat_id),
                message_id=str(message.message_id),
                user_id=str(sender.id) if sender is not None and sender.id is not None else None,
            ),
            banks=media.banks,
            sighting=SightingFacts(
                connector=self.connector,
                chat_title=message.chat_title,
                message_link=message.link,
                sender_name=sender.name if sender is not None else None,
                message_date=message.date,
                edit_date=message.edit_date,
                forward_origin=message.forward_origin,
                content_protected=message.has_protected_content,
                media_group_id=message.media_group_id,
                raw=message.raw,
            ),
        )

    def _accept_many(
        self, media: Sequence[IncomingMedia], reporters: int
    ) -> list[tuple[str, str] | RedressError]:
        """Accept every item in one transaction; each one's (item id, status), or why not."""
        pipeline = self.pipeline
        accepted: list[tuple[str, str] | RedressError] = []
        with pipeline.writes, pipeline.sessions.begin() as session:
            for item in media:
                assert isinstance(item.content, bytes)
                origin = MediaOrigin.REPORT if reporters else item.origin
                submission = MediaSubmission(
                    data=item.content,
                    filename=item.file_name,
                    context=self.context(item, reporters),
                )
                try:  # an unknown bank or a conflicting key writes nothing: the rest go on
                    row, _created = pipeline.service.accept(
                        session, submission, key=None, idempotency_key=f"{origin}:{item.key}"
                    )
                except RedressError as exc:
                    accepted.append(exc)
                    continue
                accepted.append((row.id, row.status))
        return accepted

    def _process(self, item_ids: list[str]) -> dict[str, RedressError]:
        """Lease, hash, match and decide queued items; those the pipeline could not take
        at all (its transaction failed) are answered with an error, not left hanging."""
        try:
            self.pipeline.runner.process_many(item_ids)
        except Exception as exc:  # the items stay queued: say why, and go on
            log.exception("processing %d items failed", len(item_ids))
            error = RedressError(
                f"the pipeline could not process the item: {type(exc).__name__}",
                code="scan_failed",
            )
            return dict.fromkeys(item_ids, error)
        return {}

    def _decisions(self, item_ids: list[str]) -> dict[str, Decision | RedressError]:
        """Each item's decision, read back in one query (or the error it ended with)."""
        with self.pipeline.sessions() as session:
            rows = ScanStore(session).get_many(item_ids)
        answers: dict[str, Decision | RedressError] = {}
        for item_id in item_ids:
            row = rows.get(item_id)
            if row is None:  # pragma: no cover - items are never deleted
                answers[item_id] = RedressError(
                    f"scan item {item_id} vanished", code="media_missing"
                )
                continue
            try:
                answers[item_id] = _decision(row)
            except RedressError as exc:
                answers[item_id] = exc
        return answers

    def _file_report(self, report: UserReport, items: list[str]) -> str:
        evidence = self.pipeline.service.evidence
        message = report.message
        facts: dict[str, Any] = {
            "platform": message.platform,
            "chat_id": str(message.chat_id),
            "message_id": str(message.message_id),
            "message_link": message.link,
            "reporter_id": str(report.reporter.id) if report.reporter.id is not None else None,
            "evidence_items": items,
            "note": report.note,
        }
        if evidence is None:
            raise RedressError("no evidence service configured", code="configuration_error")
        with self.pipeline.sessions.begin() as session:
            entry = evidence(session).record_event(
                f"{self.source}:report:filed",
                self.connector,
                facts,
                item_id=items[0] if items else None,
            )
        return f"ledger:{entry.seq}"


def _decision(item: ScanItem) -> Decision:
    """The connector's decision from the pipeline's finished item."""
    if item.status == DEAD:
        raise RedressError(
            item.error_detail or "the item could not be processed",
            code=item.error_code or "scan_failed",
        )
    if item.status == QUEUED or item.outcome is None:
        return Decision(Outcome.REVIEW, reason="still being processed by another worker")
    steps = item.steps or []
    candidates: list[dict[str, Any]] = next(
        (s.get("candidates", []) for s in steps if s.get("step") == "match"), []
    )
    policy = next((s for s in steps if s.get("step") == "policy"), {})
    actions: list[ActionKind] = []
    for action in (item.result or {}).get("actions", []):
        for kind in _CONNECTOR_ACTIONS.get(action, ()):
            if kind not in actions:
                actions.append(kind)
    return Decision(
        outcome=Outcome(item.outcome),
        actions=tuple(actions) if item.outcome == Outcome.ACT.value else (),
        evidence_ref=item.evidence_item_id,
        matches=tuple(f"{c['bank']}/{c['entry']}@{c['distance']}" for c in candidates),
        reason="; ".join(policy.get("reasons", [])) or f"scan {item.id}",
    )


__all__ = ["ConnectorHandoff", "PipelineSink", "handoff_actioners"]
