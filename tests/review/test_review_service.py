"""The review service on SQLite and PostgreSQL: accounts, intake, clusters, leases,
decisions, appeals, wellness and the dashboard."""

from __future__ import annotations

import pytest
from review_support import OTHER, PASSWORD, VICTIM, Console, flip

from redress.review.errors import (
    AccountLockedError,
    AlreadyDecidedError,
    BadReviewInputError,
    LeaseError,
    LoginFailedError,
    NotLoggedInError,
    ReviewItemNotFoundError,
    RoleForbiddenError,
    SameModeratorError,
    UserExistsError,
)
from redress.review.interfaces import DecisionRequest, Outcome, QueueFilter, Role, Viewer


def _confirm(service_item: int, cluster: int, version: int) -> DecisionRequest:
    return DecisionRequest(
        cluster_id=cluster,
        item_id=service_item,
        version=version,
        outcome=Outcome.CONFIRMED,
        reason_code="ncii_match",
        actions=("delete_message", "block_reupload"),
    )


def test_passwords_are_hashed_and_logins_lock_out(review: Console) -> None:
    review.user("admin@example.org", Role.ADMIN)
    with review.service() as service:
        (user,) = service.store.users()
        assert user.password_hash.startswith("$argon2")
        assert PASSWORD not in user.password_hash
        with pytest.raises(UserExistsError):
            service.create_user("ADMIN@example.org", Role.ADMIN, PASSWORD)
    for _ in range(review.settings.review_login_max_failures):
        with review.service() as service, pytest.raises(LoginFailedError):
            service.login("admin@example.org", "not the password at all")
    # Locked now: even the right password is refused until the lock-out ends.
    with review.service() as service, pytest.raises(AccountLockedError):
        service.login("admin@example.org", PASSWORD)
    review.advance(seconds=review.settings.review_lockout_seconds + 1)
    with review.service() as service:
        result = service.login("admin@example.org", PASSWORD)
    with review.service() as service:
        assert service.viewer(result.token).email == "admin@example.org"
        service.logout(result.token)
    with review.service() as service, pytest.raises(NotLoggedInError):
        service.viewer(result.token)


def test_sessions_expire(review: Console) -> None:
    review.user("mod@example.org", Role.MODERATOR)
    with review.service() as service:
        token = service.login("mod@example.org", PASSWORD).token
    review.advance(hours=review.settings.review_session_hours + 0.1)
    with review.service() as service, pytest.raises(NotLoggedInError):
        service.viewer(token)


def test_copies_form_one_cluster_ordered_by_deadline(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    first = review.scan(VICTIM, chat="-1001", message="1")
    review.scan(flip(VICTIM, 6), chat="-1002", message="9")  # same image, another group
    review.scan(OTHER)  # matches nothing: not sent to review
    with review.service() as service:
        assert service.import_pending() == []
        rows = service.queue(mod)
    assert len(rows) == 1
    (row,) = rows
    assert row.copies == 2
    assert row.bank is not None
    assert row.bank.startswith("victim")
    # A victim's case gets the TAKE IT DOWN 48-hour deadline.
    hours = (row.deadline - review.clock_now).total_seconds() / 3600
    assert 47.9 < hours < 48.1
    assert not row.breached
    review.advance(hours=49)
    with review.service() as service:
        assert service.queue(mod)[0].breached
        assert service.queue(mod, QueueFilter(chat="-1002"))[0].copies == 2
        assert service.queue(mod, QueueFilter(bank="nope")) == []
        view = service.item_view(mod, row.item_id)
    assert {s.chat for s in view.sightings} == {"-1001", "-1002"}
    assert view.scan_item_id == first
    assert view.candidates[0].distance == 0
    assert "identity hidden" in view.candidates[0].cases[0]


def test_a_lease_keeps_others_out_until_it_expires(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    other = review.user("other@example.org", Role.MODERATOR)
    review.scan(VICTIM)
    with review.service() as service:
        service.import_pending()
        item = service.queue(mod)[0].item_id
        service.item_view(mod, item)
    with review.service() as service, pytest.raises(LeaseError, match=r"mod@example\.org"):
        service.item_view(other, item)
    review.advance(seconds=review.settings.review_lease_seconds + 1)
    with review.service() as service:
        view = service.item_view(other, item)
        assert view.leased_by == "other@example.org"
    # The first moderator's stale form is refused and changes nothing.
    with review.service() as service, pytest.raises(LeaseError):
        service.decide(mod, _confirm(item, view.cluster_id, view.version))
    with review.service() as service:
        assert service.queue(other)[0].item_id == item


def test_a_decision_covers_every_copy_now_and_later(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    a = review.scan(VICTIM, chat="-1001", message="1")
    b = review.scan(flip(VICTIM, 4), chat="-1002", message="2")
    with review.service() as service:
        service.import_pending()
        view = service.item_view(mod, service.queue(mod)[0].item_id)
    with review.service() as service:
        result = service.decide(mod, _confirm(view.item_id, view.cluster_id, view.version))
    assert result.copies == 2
    assert set(result.queued_actions) == {
        f"{a}:delete_message",
        f"{a}:block_reupload",
        f"{b}:delete_message",
        f"{b}:block_reupload",
    }
    # A double submit is refused and changes nothing.
    with review.service() as service, pytest.raises(AlreadyDecidedError):
        service.decide(mod, _confirm(view.item_id, view.cluster_id, view.version))
    # A copy arriving later follows the decision without a person.
    c = review.scan(flip(VICTIM, 8), chat="-1003", message="3")
    with review.service() as service:
        assert service.import_pending() == [c]
        assert service.queue(mod) == []
        outbox = dict(service.outbox([c]))
    assert outbox == {f"{c}:block_reupload": "pending", f"{c}:delete_message": "pending"}
    # The pipeline's runner performs what it can (block re-upload) after commit.
    review.pipeline.runner.after_commit(c)
    with review.service() as service:
        assert dict(service.outbox([c]))[f"{c}:block_reupload"] == "done"
        audit = service.audit_log(_admin(review))
    assert any(e.action == "review:cluster:followed" for e in audit)


def _admin(review: Console) -> Viewer:
    return review.user("admin@example.org", Role.ADMIN)


def test_tampered_decisions_change_nothing(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    review.scan(VICTIM)
    with review.service() as service:
        service.import_pending()
        view = service.item_view(mod, service.queue(mod)[0].item_id)
    bad = [
        DecisionRequest(view.cluster_id, view.item_id, view.version, Outcome.CONFIRMED, "made_up"),
        DecisionRequest(
            view.cluster_id,
            view.item_id,
            view.version,
            Outcome.CONFIRMED,
            "ncii_match",
            actions=("format_disk",),
        ),
        DecisionRequest(
            view.cluster_id, view.item_id, view.version, Outcome.ESCALATED, "senior_review"
        ),
        DecisionRequest(
            view.cluster_id + 99, view.item_id, view.version, Outcome.NEEDS_INFO, "need_context"
        ),
    ]
    for request in bad:
        with review.service() as service, pytest.raises(BadReviewInputError):
            service.decide(mod, request)
    with review.service() as service, pytest.raises(LeaseError, match="changed"):
        service.decide(mod, _confirm(view.item_id, view.cluster_id, view.version - 1))
    with review.service() as service:
        assert len(service.queue(mod)) == 1
        assert service.store.decisions(view.cluster_id) == []


def test_not_a_violation_lowers_the_entry_for_later_items(review: Console) -> None:
    # Clusters only exact copies here, so a second image of the same entry is its own.
    review.settings = review.settings.model_copy(update={"review_cluster_distance": 2})
    mod = review.user("mod@example.org", Role.MODERATOR)
    review.scan(VICTIM)
    with review.service() as service:
        service.import_pending()
        before = service.queue(mod)[0]
        view = service.item_view(mod, before.item_id)
        service.decide(
            mod,
            DecisionRequest(
                view.cluster_id, view.item_id, view.version, Outcome.NOT_VIOLATION, "false_match"
            ),
        )
    # A different image matching the same entry arrives: its priority is lowered.
    review.scan(flip(VICTIM, 20), message="8")
    with review.service() as service:
        service.import_pending()
        (lowered,) = service.queue(mod)
    assert lowered.cluster_id != before.cluster_id
    assert lowered.priority == before.priority - 20


def test_appeals_go_to_a_different_moderator(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    other = review.user("other@example.org", Role.MODERATOR)
    review.scan(VICTIM)
    with review.service() as service:
        service.import_pending()
        view = service.item_view(mod, service.queue(mod)[0].item_id)
        service.decide(mod, _confirm(view.item_id, view.cluster_id, view.version))
    with review.service() as service:
        appeal = service.appeal(mod, view.cluster_id, "user 77", "this is me, I consented")
        assert len(service.queue(mod)) == 1
    with review.service() as service:
        again = service.item_view(mod, view.item_id)
    assert again.leased_by is None  # the original moderator only looks; no lease
    with review.service() as service, pytest.raises(SameModeratorError):
        service.decide(mod, _confirm(again.item_id, again.cluster_id, again.version))
    with review.service() as service:
        fresh = service.item_view(other, view.item_id)
        service.decide(
            other,
            DecisionRequest(
                fresh.cluster_id,
                fresh.item_id,
                fresh.version,
                Outcome.NOT_VIOLATION,
                "consensual_public",
            ),
        )
    with review.service() as service:
        (row,) = [a for a in service.appeals(other) if a.id == appeal]
        assert row.status == "overturned"
        assert service.queue(other) == []


def test_roles_and_advocates_see_only_their_cases(review: Console) -> None:
    advocate = review.user("adv@example.org", Role.ADVOCATE, cases=(review.case_number,))
    stranger = review.user("adv2@example.org", Role.ADVOCATE)
    auditor = review.user("audit@example.org", Role.AUDITOR)
    review.scan(VICTIM, caption="call her 138 1234 5678")
    with review.service() as service:
        service.import_pending()
        (row,) = service.queue(advocate)
        view = service.item_view(advocate, row.item_id)
        assert any(review.case_number in c for c in view.candidates[0].cases)
        assert any(p.kind == "phone" for p in view.caption)
        assert service.queue(stranger) == []
        with pytest.raises(ReviewItemNotFoundError):
            service.item_view(stranger, row.item_id)
        with pytest.raises(RoleForbiddenError):
            service.queue(auditor)
        with pytest.raises(RoleForbiddenError):
            service.decide(advocate, _confirm(row.item_id, row.cluster_id, 0))
        assert service.dashboard(auditor).open_items == 1


def test_reveals_are_audited_and_counted(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    review.scan(VICTIM)
    with review.service() as service:
        service.import_pending()
        item = service.queue(mod)[0].item_id
        assert not service.revealed(mod, item)
        exposure = service.reveal(mod, item)
        assert exposure.today == 1
        assert not exposure.over
        assert service.revealed(mod, item)
        events = service.store.audit_events(action="review:media:revealed")
    assert [(e.actor, e.target) for e in events] == [("mod@example.org", f"item:{item}")]


def test_dashboard_measures_time_to_decision(review: Console) -> None:
    mod = review.user("mod@example.org", Role.MODERATOR)
    review.scan(VICTIM)
    review.advance(hours=2)
    with review.service() as service:
        service.import_pending()
        view = service.item_view(mod, service.queue(mod)[0].item_id)
        service.decide(mod, _confirm(view.item_id, view.cluster_id, view.version))
        board = service.dashboard(mod)
    assert board.open_items == 0
    assert board.by_outcome == {"confirmed": 1}
    assert board.median_seconds is not None
    assert 7000 < board.median_seconds < 7300
    assert sum(sum(days.values()) for days in board.by_bank_day.values()) == 1


def test_bulk_escalation_to_law_enforcement_exports_evidence(review: Console) -> None:
    from sqlalchemy import select

    from redress.evidence.interfaces import CaptureRequest, MessageFacts, Trigger, TriggerKind
    from redress.evidence.models import LedgerEntryRow
    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore
    from redress.web.console import build_review_service

    mod = review.user("mod@example.org", Role.MODERATOR)
    review.scan(VICTIM, chat="-1001", message="1")
    review.scan(flip(VICTIM, 3), chat="-1003", message="3")
    with review.pipeline.sessions.begin() as session:
        evidence = build_evidence_service(SqlEvidenceStore(session), review.settings)
        captured = evidence.capture(
            CaptureRequest(
                content=b"stored exactly as given",
                media_type="image/png",
                message=MessageFacts(platform="telegram", chat_id="-1001", message_id="1"),
                trigger=Trigger(TriggerKind.MATCH),
                connector="telegram-bot",
                operator="test",
            )
        )
    with review.pipeline.sessions.begin() as session:
        service = build_review_service(session, review.settings)
        service.import_pending()
        (row,) = service.queue(mod)
        view = service.item_view(mod, row.item_id)
        assert any(captured.id in e for e in view.evidence)
    with review.pipeline.sessions.begin() as session:
        service = build_review_service(session, review.settings)
        (result,) = service.bulk_decide(
            mod,
            [
                DecisionRequest(
                    0,
                    row.item_id,
                    0,
                    Outcome.ESCALATED,
                    "law_enforcement",
                    escalate_to="law_enforcement",
                )
            ],
        )
    assert result.export_items == (captured.id,)
    assert list((review.settings.home / "exports").glob("cluster-*.zip"))
    with review.pipeline.sessions() as session:
        kinds = list(session.scalars(select(LedgerEntryRow.kind)))
        assert build_review_service(session, review.settings).queue(mod) == []
    assert "review:cluster:escalated" in kinds
