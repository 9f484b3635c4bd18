"""A connector in another process drains its kind of action from the outbox, once each."""

from __future__ import annotations

from pathlib import Path

from redress.actions import ActionKind, ActionRequest, ActionResult
from redress.actions.interfaces import ActionTarget
from redress.config import Settings
from redress.pipeline.container import build_pipeline
from redress.pipeline.interfaces import MatchQuery
from redress.pipeline.matching import StoreMatcher
from redress.pipeline.service import HashSubmission, ScanContext
from redress.signals.types import PdqHash, SignalKind
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.migrate import upgrade
from redress.store.service import BankService


class DeletedMessages:
    """A connector's delete action that remembers what it was asked to delete."""

    kind = ActionKind.DELETE_MESSAGE

    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []

    def perform(self, request: ActionRequest) -> ActionResult:
        self.requests.append(request)
        return ActionResult(ok=True, detail="deleted")


def test_connector_drains_pending_deletes_once(tmp_path: Path, database_url: str) -> None:
    upgrade(database_url)
    settings = Settings(home=tmp_path / "home", database_url=database_url)
    pipeline = build_pipeline(settings, embedded_queue=False)
    known = PdqHash(bytes(range(32)))
    try:
        with pipeline.sessions.begin() as session:
            BankService(session).create("confirmed", BankPurpose.CONFIRMED_VIOLATIONS)
            BankService(session).add(
                "confirmed", [EntryIn(kind=SignalKind.PDQ, value=known.bits, quality=100)]
            )
        matcher = pipeline.service.matcher
        assert isinstance(matcher, StoreMatcher)
        matcher.follower.poll()  # see the new entry now rather than within 0.2 s
        target = ActionTarget(platform="telegram", chat_id="-100", message_id="9")
        with pipeline.sessions.begin() as session:
            result = pipeline.service.scan_hashes(
                session,
                HashSubmission(MatchQuery(pdq=(known,)), ScanContext(source="bot", target=target)),
                key=None,
            )
        assert result.outcome == "act"
        connector = DeletedMessages()
        assert pipeline.runner.drain_outbox(connector) == 1
        assert pipeline.runner.drain_outbox(connector) == 0  # never twice
        (request,) = connector.requests
        assert request.action_id == f"{result.item_id}:delete_message"
        assert (request.target.chat_id, request.target.message_id) == ("-100", "9")
        assert request.banks == ("confirmed",)
    finally:
        pipeline.close()
