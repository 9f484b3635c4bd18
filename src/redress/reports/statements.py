"""Statements of reasons (DSA Art. 17) for every removal or restriction, their delivery
to the affected user through a connector, and their export in the DSA Transparency
Database's statement schema (JSON or CSV, without personal data).

The field names and allowed values are those of the Transparency Database's
statement API (``POST /api/v1/statement``); ``dsa_statement.schema.json`` in this
folder states them as a JSON Schema and the export is tested against it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redress.connectors.interfaces import StatementMessage, StatementSender
from redress.pipeline.models import ScanAction
from redress.reports.interfaces import Clock, Regime, Relation
from redress.reports.locations import message_link
from redress.reports.models import StatementOfReasons
from redress.reports.store import NoticeStore
from redress.review.service import facts_of

#: The export's columns, in the schema's order.
DSA_FIELDS = (
    "decision_visibility",
    "decision_account",
    "decision_ground",
    "illegal_content_legal_ground",
    "illegal_content_explanation",
    "content_type",
    "category",
    "territorial_scope",
    "application_date",
    "decision_facts",
    "source_type",
    "automated_detection",
    "automated_decision",
    "url",
    "puid",
)
VISIBILITY = {
    "delete_message": "DECISION_VISIBILITY_CONTENT_REMOVED",
    "block_reupload": "DECISION_VISIBILITY_CONTENT_DISABLED",
}
ACCOUNT = {"restrict_user": "DECISION_ACCOUNT_SUSPENDED"}
TAKE_IT_DOWN_GROUND = (
    "US TAKE IT DOWN Act (2025): publication of a non-consensual intimate visual depiction"
)


def dsa_schema() -> dict[str, Any]:
    """The JSON Schema of one exported statement (from the Transparency Database's API)."""
    text = resources.files("redress.reports").joinpath("dsa_statement.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@dataclass(frozen=True, slots=True)
class StatementConfig:
    """The settings statements need."""

    legal_ground: str = "Non-consensual sharing of intimate images (national criminal law)"
    territorial_scope: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> StatementConfig:
        """Build from the app's settings."""
        return cls(
            legal_ground=settings.statement_legal_ground,
            territorial_scope=tuple(c.upper() for c in settings.statement_territorial_scope),
        )


class StatementService:
    """Creates statements for removals and restrictions, and exports them."""

    def __init__(self, store: NoticeStore, config: StatementConfig, *, clock: Clock) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    def sync(self) -> int:
        """A statement for each removal or restriction that has none yet; returns how many."""
        created = 0
        while True:
            actions = self.store.actions_without_statement()
            if not actions:
                return created
            for action in actions:
                self.store.add(self._statement(action))
                created += 1

    def _statement(self, action: ScanAction) -> StatementOfReasons:
        scan = self.store.scan_item(action.item_id)
        assert scan is not None
        facts = facts_of(scan)
        notice = self.store.notices_of_items([scan.id]).get(scan.id)
        relation = self.store.relations([scan.id]).get(scan.id)
        review = self.store.review_items([scan.id]).get(scan.id)
        cluster = self.store.cluster(review.cluster_id) if review is not None else None
        # A human decided when the copy was in the cluster a moderator decided; a copy
        # that followed an earlier decision, or an automatic act, is automated.
        human = (
            review is not None
            and cluster is not None
            and cluster.decided_by is not None
            and review.decided_at is not None
            and cluster.decided_at is not None
            and abs((review.decided_at - cluster.decided_at).total_seconds()) < 1
        )
        if notice is not None and notice.regime == Regime.TAKE_IT_DOWN.value:
            ground = TAKE_IT_DOWN_GROUND
        else:
            ground = self.config.legal_ground
        reason = self._reason(cluster.id if cluster else None)
        category = (
            "STATEMENT_CATEGORY_CHILD_SAFETY"
            if reason == "minor_suspected"
            else "STATEMENT_CATEGORY_NON_CONSENT"
        )
        if notice is not None:
            source_type = "SOURCE_TRUSTED_FLAGGER" if notice.trusted else "SOURCE_ARTICLE_16"
        else:
            source_type = "SOURCE_VOLUNTARY"
        detected_by_hash = relation not in (Relation.LOCATED.value, Relation.UNLOCATED.value)
        kind = (facts.kind or "").lower()
        content_type = ["CONTENT_TYPE_VIDEO"] if "video" in kind else ["CONTENT_TYPE_IMAGE"]
        url = (
            facts.message_link
            or message_link(facts.platform, facts.chat, facts.message_id)
            or str((scan.request or {}).get("context", {}).get("location") or "")
            or f"urn:redress:item:{scan.id}"
        )
        facts_text = self._facts_text(facts.candidates, notice is not None, human, detected_by_hash)
        return StatementOfReasons(
            puid=uuid.uuid4().hex,
            scan_item_id=scan.id,
            action_kind=action.kind,
            notice_id=notice.id if notice is not None else None,
            created_at=self.clock(),
            application_date=action.created_at,
            decision_visibility=VISIBILITY.get(action.kind),
            decision_account=ACCOUNT.get(action.kind),
            decision_ground="DECISION_GROUND_ILLEGAL_CONTENT",
            illegal_content_legal_ground=ground[:500],
            illegal_content_explanation=(
                "The image or video is an intimate depiction of a person shared without her "
                "consent: it matches a hash registered by or for the person depicted, or a "
                "moderator confirmed it after a notice."
            ),
            content_type=content_type,
            category=category,
            territorial_scope=list(self.config.territorial_scope),
            decision_facts=facts_text,
            source_type=source_type,
            automated_detection=detected_by_hash or notice is None,
            automated_decision=not human,
            url=url[:500],
            affected_platform=facts.platform,
            affected_chat=facts.chat,
            affected_user=facts.sender,
            delivery="pending" if facts.sender and facts.platform else "no_recipient",
        )

    def _reason(self, cluster_id: int | None) -> str | None:
        return self.store.latest_reason(cluster_id) if cluster_id is not None else None

    @staticmethod
    def _facts_text(
        candidates: Sequence[dict[str, Any]], notice: bool, human: bool, hashed: bool
    ) -> str:
        parts = []
        if notice:
            parts.append("A notice named this content or a copy of it.")
        if candidates or hashed:
            distances = [int(c["distance"]) for c in candidates if c.get("distance") is not None]
            nearest = f" (PDQ distance {min(distances)})" if distances else ""
            parts.append(f"The media matched a hash of known non-consensual imagery{nearest}.")
        parts.append(
            "A moderator reviewed it and confirmed the decision."
            if human
            else "The decision followed an earlier moderator decision or an automatic rule."
        )
        return " ".join(parts)

    # -- delivery --------------------------------------------------------------------------------

    def pending_messages(self, platform: str, limit: int = 100) -> list[StatementMessage]:
        """Statements still to tell their affected user about, on one platform."""
        out = []
        for row in self.store.undelivered_statements(limit):
            if row.affected_platform != platform or not row.affected_user:
                continue
            out.append(
                StatementMessage(
                    row.id, platform, row.affected_chat, row.affected_user, text_of(row)
                )
            )
        return out

    def record_delivery(self, statement_id: int, ok: bool, detail: str) -> None:
        """Record how a delivery went (a failure is final: the user cannot be reached)."""
        row = self.store.statement(statement_id)
        if row is None:
            return
        row.delivery = "sent" if ok else "failed"
        row.delivered_at = self.clock()
        row.delivery_detail = detail[:2000]
        self.store.session.flush()

    # -- export ----------------------------------------------------------------------------------

    def export(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Statements in the Transparency Database's schema: no personal data."""
        return [dsa_record(row) for row in self.store.statements(start, end)]


def dsa_record(row: StatementOfReasons) -> dict[str, Any]:
    """One statement as the Transparency Database's API takes it."""
    record: dict[str, Any] = {
        "decision_ground": row.decision_ground,
        "illegal_content_legal_ground": row.illegal_content_legal_ground,
        "illegal_content_explanation": row.illegal_content_explanation,
        "content_type": list(row.content_type),
        "category": row.category,
        "application_date": row.application_date.astimezone(dt.UTC).strftime("%Y-%m-%d-%H"),
        "decision_facts": row.decision_facts,
        "source_type": row.source_type,
        "automated_detection": "Yes" if row.automated_detection else "No",
        "automated_decision": "Yes" if row.automated_decision else "No",
        "url": row.url,
        "puid": row.puid,
    }
    if row.decision_visibility:
        record["decision_visibility"] = row.decision_visibility
    if row.decision_account:
        record["decision_account"] = row.decision_account
    if row.territorial_scope:
        record["territorial_scope"] = list(row.territorial_scope)
    return {name: record[name] for name in DSA_FIELDS if name in record}


def to_csv(records: Sequence[dict[str, Any]]) -> str:
    """Statements as CSV, one column per schema field (lists joined with commas)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=DSA_FIELDS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow(
            {
                name: ",".join(value) if isinstance(value, list) else (value or "")
                for name, value in ((n, record.get(n)) for n in DSA_FIELDS)
            }
        )
    return out.getvalue()


def text_of(row: StatementOfReasons) -> str:
    """The statement as the affected user reads it (Art. 17(3))."""
    what = {
        "delete_message": "Your message was removed.",
        "block_reupload": "Re-uploads of this media are blocked.",
        "restrict_user": "Your account was restricted in this group.",
    }.get(row.action_kind, "Your content was restricted.")
    return (
        f"{what}\n"
        f"Why: {row.illegal_content_legal_ground}. {row.decision_facts}\n"
        f"When: {row.application_date:%Y-%m-%d %H:%M} UTC. "
        f"Automated decision: {'yes' if row.automated_decision else 'no'}.\n"
        f"Reference: {row.puid}. You may appeal by replying with this reference; "
        "you may also use out-of-court dispute settlement or the courts."
    )


async def deliver_statements(sessions: Any, service_for: Any, sender: StatementSender) -> int:
    """Send every pending statement on the sender's platform; returns how many were sent.

    Each delivery is recorded in its own transaction right after the send, so a crash
    re-sends at most one statement.
    """
    with sessions.begin() as session:
        messages = service_for(session).pending_messages(sender.platform)
    sent = 0
    for message in messages:
        ok, detail = await sender.send_statement(message)
        with sessions.begin() as session:
            service_for(session).record_delivery(message.statement_id, ok, detail)
        sent += ok
    return sent
