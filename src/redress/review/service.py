"""The review console's rules: accounts and sessions, intake from the pipeline, the
queue and its leases, clusters, decisions, appeals, wellness limits and the dashboard.

Every method works in the caller's session and only flushes; the edge (the web
request, the CLI command) commits, then runs :meth:`ReviewService.perform_actions`
for the items a decision queued, so nothing is performed for a rolled-back decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from redress.index.mih import MihIndex
from redress.pipeline.models import ScanItem
from redress.pipeline.text import find_personal_details
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
from redress.review.interfaces import (
    CONFIRM_ACTIONS,
    REASON_CODES,
    AuditRow,
    CandidateView,
    CaptionPart,
    Dashboard,
    DecisionRequest,
    DecisionResult,
    DecisionView,
    EvidenceLedger,
    ItemView,
    Outcome,
    QueueFilter,
    QueueRow,
    ReviewAction,
    Role,
    SightingView,
    UserRead,
    Viewer,
)
from redress.review.models import (
    ReviewAdvocateCase,
    ReviewAppeal,
    ReviewCluster,
    ReviewDecision,
    ReviewItem,
    ReviewSession,
    ReviewUser,
)
from redress.review.store import DECIDED, OPEN, ReviewStore

Clock = Callable[[], dt.datetime]

#: Roles allowed to decide clusters and take leases.
DECIDERS = frozenset({Role.ADMIN, Role.MODERATOR})
#: Roles that see the queue and items.
QUEUE_READERS = frozenset({Role.ADMIN, Role.MODERATOR, Role.ADVOCATE})
#: Roles that see the dashboard.
REPORT_READERS = frozenset({Role.ADMIN, Role.MODERATOR, Role.AUDITOR})
#: Roles that see the audit log.
AUDIT_READERS = frozenset({Role.ADMIN, Role.AUDITOR})
#: Priority taken off new items for each 'not a violation' feedback on an entry they match.
FEEDBACK_PENALTY = 20
MIN_PASSWORD = 12


def utcnow() -> dt.datetime:
    """The current UTC time (the default clock)."""
    return dt.datetime.now(dt.UTC)


def token_digest(token: str) -> str:
    """The SHA-256 stored for a session token (the token itself is only in the cookie)."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ReviewConfig:
    """The settings the console needs (taken from :class:`redress.config.Settings`)."""

    lease_seconds: int = 900
    exposure_soft_limit: int = 40
    login_max_failures: int = 5
    lockout_seconds: int = 900
    session_hours: float = 12.0
    takedown_hours: float = 48.0
    deadline_hours: float = 168.0
    cluster_distance: int = 31
    export_dir: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> ReviewConfig:
        """Build from the app's settings."""
        return cls(
            lease_seconds=settings.review_lease_seconds,
            exposure_soft_limit=settings.review_exposure_soft_limit,
            login_max_failures=settings.review_login_max_failures,
            lockout_seconds=settings.review_lockout_seconds,
            session_hours=settings.review_session_hours,
            takedown_hours=settings.review_takedown_hours,
            deadline_hours=settings.review_deadline_hours,
            cluster_distance=settings.review_cluster_distance,
            export_dir=settings.home / "exports",
        )


@dataclass(frozen=True, slots=True)
class LoginResult:
    """A new session: the token for the cookie and the viewer it belongs to."""

    token: str
    viewer: Viewer


@dataclass(frozen=True, slots=True)
class Exposure:
    """How many items a user revealed today, against the soft limit."""

    today: int
    soft_limit: int

    @property
    def over(self) -> bool:
        """Whether the soft limit is reached."""
        return self.today >= self.soft_limit


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the console needs from a pipeline item's steps and request."""

    pdq: str | None
    sha256: str | None
    kind: str | None
    candidates: tuple[dict[str, Any], ...]
    reasons: tuple[str, ...]
    source: str
    caption: str | None
    platform: str | None
    chat: str | None
    message_id: str | None
    sender: str | None
    message_link: str | None


def facts_of(scan: ScanItem) -> _Facts:
    """Read hashes, candidates and the sighting out of a pipeline item."""
    pdq: str | None = None
    sha256: str | None = None
    kind: str | None = None
    candidates: list[dict[str, Any]] = []
    reasons: list[str] = []
    for step in scan.steps or []:
        if step.get("step") == "hash":
            pdq = step.get("pdq") or None
            sha256 = step.get("sha256") or None
            kind = step.get("kind")
        elif step.get("step") == "match":
            candidates.extend(step.get("candidates") or [])
        elif step.get("step") == "policy":
            reasons.extend(str(r) for r in step.get("reasons") or [])
    request = scan.request or {}
    query = request.get("query") or {}
    if pdq is None and query.get("pdq"):
        pdq = str(query["pdq"][0][0])
    if sha256 is None and query.get("sha256"):
        sha256 = str(query["sha256"])
    context = request.get("context") or {}
    target = context.get("target") or {}
    chat = target.get("chat_id")
    message_id = target.get("message_id")
    link = None
    if target.get("platform") == "telegram" and chat and message_id:
        link = f"https://t.me/c/{str(chat).removeprefix('-100')}/{message_id}"
    return _Facts(
        pdq=pdq,
        sha256=sha256,
        kind=kind or scan.mode,
        candidates=tuple(candidates),
        reasons=tuple(reasons),
        source=str(context.get("source") or scan.source),
        caption=context.get("caption"),
        platform=target.get("platform"),
        chat=str(chat) if chat is not None else None,
        message_id=str(message_id) if message_id is not None else None,
        sender=str(target["user_id"]) if target.get("user_id") is not None else None,
        message_link=link,
    )


def caption_parts(caption: str | None) -> tuple[CaptionPart, ...]:
    """Split a caption into plain runs and personal details (to highlight)."""
    if not caption:
        return ()
    parts: list[CaptionPart] = []
    at = 0
    for detail in find_personal_details(caption):
        if detail.start > at:
            parts.append(CaptionPart(caption[at : detail.start]))
        parts.append(CaptionPart(caption[detail.start : detail.end], detail.kind.value))
        at = detail.end
    if at < len(caption):
        parts.append(CaptionPart(caption[at:]))
    return tuple(parts)


def require(viewer: Viewer, roles: Iterable[Role]) -> None:
    """Refuse unless the viewer's role is one of ``roles``."""
    if viewer.role not in set(roles):
        raise RoleForbiddenError(f"the {viewer.role.value} role may not do this")


class ReviewService:
    """The console's rules over one database session."""

    def __init__(
        self,
        store: ReviewStore,
        config: ReviewConfig,
        *,
        clock: Clock = utcnow,
        ledger: EvidenceLedger | None = None,
        exporter: Callable[[Sequence[str], Path, str], object] | None = None,
        opener: Callable[[str, str, str], bytes] | None = None,
        passwords: PasswordHasher | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.clock = clock
        self.ledger = ledger
        self.exporter = exporter
        self.opener = opener
        self.passwords = passwords or PasswordHasher()

    # -- accounts --------------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        role: Role,
        password: str,
        *,
        cases: Sequence[str] = (),
        actor: str = "cli",
    ) -> UserRead:
        """Create an account (advocates get their case numbers); the password is hashed."""
        email = email.strip()
        if "@" not in email or len(email) > 254:
            raise BadReviewInputError(f"{email!r} is not an e-mail address")
        if len(password) < MIN_PASSWORD:
            raise BadReviewInputError(f"a password needs at least {MIN_PASSWORD} characters")
        if self.store.user_by_email(email) is not None:
            raise UserExistsError(f"{email} already has an account")
        if cases and role is not Role.ADVOCATE:
            raise BadReviewInputError("only advocates are assigned cases")
        found = self.store.case_ids_by_number(cases)
        missing = sorted(set(cases) - set(found))
        if missing:
            raise BadReviewInputError(f"no such case: {', '.join(missing)}")
        user = ReviewUser(
            email=email,
            role=role.value,
            password_hash=self.passwords.hash(password),
            failed_logins=0,
            active=True,
            created_at=self.clock(),
        )
        self.store.add(user)
        for case_id in found.values():
            self.store.add(ReviewAdvocateCase(user_id=user.id, case_id=case_id))
        self._audit(actor, ReviewAction.USER_CREATE, f"user:{email}", {"role": role.value})
        return UserRead(user.id, user.email, role, None, tuple(found.values()))

    def users(self) -> list[UserRead]:
        """Every account."""
        return [
            UserRead(u.id, u.email, Role(u.role), u.locked_until, tuple(self.store.case_ids(u.id)))
            for u in self.store.users()
        ]

    def login(self, email: str, password: str) -> LoginResult:
        """Check a password and open a session; failures count toward a lock-out.

        The answer never says whether the e-mail exists. A locked account is refused
        even with the right password until the lock-out ends.
        """
        now = self.clock()
        user = self.store.user_by_email(email.strip())
        if user is None or not user.active:
            # Hash anyway so that an unknown e-mail takes as long as a wrong password.
            self.passwords.hash(password)
            self._audit(email[:254], ReviewAction.LOGIN_FAILED, "login", {"known": False})
            raise LoginFailedError("wrong e-mail or password")
        if user.locked_until is not None and user.locked_until > now:
            self._audit(user.email, ReviewAction.LOCKED, "login", {})
            raise AccountLockedError(
                f"too many failed logins; try again after {user.locked_until:%H:%M} UTC"
            )
        try:
            self.passwords.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            user.failed_logins += 1
            details: dict[str, Any] = {"failures": user.failed_logins}
            if user.failed_logins >= self.config.login_max_failures:
                user.locked_until = now + dt.timedelta(seconds=self.config.lockout_seconds)
                user.failed_logins = 0
                details["locked_until"] = user.locked_until.isoformat()
            self.store.session.flush()
            self._audit(user.email, ReviewAction.LOGIN_FAILED, "login", details)
            raise LoginFailedError("wrong e-mail or password") from None
        user.failed_logins = 0
        user.locked_until = None
        if self.passwords.check_needs_rehash(user.password_hash):
            user.password_hash = self.passwords.hash(password)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        self.store.add(
            ReviewSession(
                token_sha256=token_digest(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + dt.timedelta(hours=self.config.session_hours),
            )
        )
        self._audit(user.email, ReviewAction.LOGIN, "login", {})
        return LoginResult(token, self._viewer(user, csrf))

    def viewer(self, token: str | None) -> Viewer:
        """The user a session cookie belongs to; :class:`NotLoggedInError` otherwise."""
        if not token:
            raise NotLoggedInError("please log in")
        row = self.store.session_row(token_digest(token))
        if row is None or row.expires_at <= self.clock():
            raise NotLoggedInError("your session ended; please log in again")
        user = self.store.user(row.user_id)
        if user is None or not user.active:
            raise NotLoggedInError("please log in")
        return self._viewer(user, row.csrf_token)

    def logout(self, token: str) -> None:
        """End a session (the row is deleted, so the cookie is worthless)."""
        row = self.store.session_row(token_digest(token))
        if row is not None:
            user = self.store.user(row.user_id)
            self.store.delete(row)
            self._audit(user.email if user else "?", ReviewAction.LOGOUT, "login", {})

    def _viewer(self, user: ReviewUser, csrf: str) -> Viewer:
        role = Role(user.role)
        cases = frozenset(self.store.case_ids(user.id)) if role is Role.ADVOCATE else frozenset()
        return Viewer(user.id, user.email, role, csrf, cases)

    # -- intake ----------------------------------------------------------------------------------

    def import_pending(self) -> list[str]:
        """Bring every pipeline item with outcome ``review`` into the queue.

        Each joins the cluster of a copy within the cluster distance (searched with a
        :class:`MihIndex` over the clusters' representative hashes) or of a
        byte-identical copy, or starts a new cluster. A copy that joins a decided
        cluster follows its decision: confirmed clusters queue their actions for it
        too. Returns the scan item IDs whose actions the edge must perform after commit.
        """
        scans = self.store.unimported_review_items()
        if not scans:
            return []
        now = self.clock()
        index = MihIndex()
        for cluster_id, pdq in self.store.clusters_with_pdq():
            index.add(cluster_id, [bytes.fromhex(pdq)])
        penalties = self._feedback_penalties()
        follow_up: list[str] = []
        for scan in scans:
            facts = facts_of(scan)
            cluster = self._cluster_for(facts, index, now)
            purposes = {str(c.get("purpose")) for c in facts.candidates}
            hours = (
                self.config.takedown_hours
                if "victim_cases" in purposes
                else self.config.deadline_hours
            )
            created = scan.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=dt.UTC)
            penalty = sum(
                penalties.get(int(c["entry"]), 0) for c in facts.candidates if c.get("entry")
            )
            item = ReviewItem(
                scan_item_id=scan.id,
                cluster_id=cluster.id,
                status=OPEN,
                bank=str(facts.candidates[0]["bank"]) if facts.candidates else None,
                source=facts.source,
                chat=facts.chat,
                priority=max(0, (scan.priority or 0) - penalty),
                deadline=created + dt.timedelta(hours=hours),
                created_at=created,
                version=0,
            )
            self.store.add(item)
            if cluster.status == DECIDED:
                item.status = DECIDED
                item.decided_at = now
                queued = self._queue_actions([scan.id], list(cluster.actions or []), now)
                if queued:
                    follow_up.append(scan.id)
                self._audit(
                    "redress",
                    ReviewAction.AUTO_DECISION,
                    f"cluster:{cluster.id}",
                    {"scan_item": scan.id, "outcome": cluster.outcome, "actions": queued},
                )
        self.store.session.flush()
        return follow_up

    def _cluster_for(self, facts: _Facts, index: MihIndex, now: dt.datetime) -> ReviewCluster:
        cluster: ReviewCluster | None = None
        if facts.pdq:
            hits = index.search(bytes.fromhex(facts.pdq), self.config.cluster_distance)
            if hits:
                cluster = self.store.cluster(hits[0].entry_id)
        if cluster is None and facts.sha256:
            cluster = self.store.cluster_by_sha256(facts.sha256)
        if cluster is None:
            cluster = ReviewCluster(
                pdq=facts.pdq, sha256=facts.sha256, status=OPEN, actions=[], created_at=now
            )
            self.store.add(cluster)
            if facts.pdq:
                index.add(cluster.id, [bytes.fromhex(facts.pdq)])
        return cluster

    def _feedback_penalties(self) -> dict[int, int]:
        penalties: Counter[int] = Counter()
        for actions in self.store.not_violation_actions():
            for action in actions:
                if action.startswith("lower_entry:"):
                    penalties[int(action.split(":", 1)[1])] += FEEDBACK_PENALTY
        return dict(penalties)

    # -- queue -----------------------------------------------------------------------------------

    def queue(self, viewer: Viewer, filters: QueueFilter | None = None) -> list[QueueRow]:
        """Open clusters, most urgent first (deadline, then priority), one row each."""
        require(viewer, QUEUE_READERS)
        filters = filters or QueueFilter()
        now = self.clock()
        items = self.store.open_items()
        visible = self._visible(viewer, items)
        copies = Counter(i.cluster_id for i in visible)
        rows: list[QueueRow] = []
        seen: set[int] = set()
        emails: dict[int, str] = {}
        for item in visible:
            if item.cluster_id in seen:
                continue
            if filters.bank and item.bank != filters.bank:
                continue
            if filters.source and item.source != filters.source:
                continue
            if filters.chat and item.chat != filters.chat:
                continue
            if filters.min_priority is not None and item.priority < filters.min_priority:
                continue
            seen.add(item.cluster_id)
            holder = None
            if item.leased_by is not None and item.leased_until and item.leased_until > now:
                if item.leased_by not in emails:
                    user = self.store.user(item.leased_by)
                    emails[item.leased_by] = user.email if user else "?"
                holder = emails[item.leased_by]
            rows.append(
                QueueRow(
                    item_id=item.id,
                    cluster_id=item.cluster_id,
                    copies=copies[item.cluster_id],
                    bank=item.bank,
                    source=item.source,
                    chat=item.chat,
                    priority=item.priority,
                    deadline=item.deadline,
                    breached=item.deadline <= now,
                    leased_by=holder,
                )
            )
        return rows

    def _case_ids_of(self, scan: ScanItem | None) -> set[int]:
        if scan is None:
            return set()
        return {int(c) for cand in facts_of(scan).candidates for c in cand.get("cases") or []}

    def _visible(self, viewer: Viewer, items: list[ReviewItem]) -> list[ReviewItem]:
        if viewer.role is not Role.ADVOCATE:
            return items
        scans = self.store.scan_items([i.scan_item_id for i in items])
        return [i for i in items if self._case_ids_of(scans.get(i.scan_item_id)) & viewer.case_ids]

    def _item(self, viewer: Viewer, item_id: int) -> ReviewItem:
        item = self.store.item(item_id)
        if item is None or not self._visible(viewer, [item]):
            raise ReviewItemNotFoundError(f"no review item {item_id}")
        return item

    def lease(self, viewer: Viewer, item_id: int) -> ReviewItem:
        """Lease the item's cluster to a moderator (refused while someone else holds it)."""
        require(viewer, DECIDERS)
        item = self._item(viewer, item_id)
        if item.status != OPEN:
            return item
        appeal = self.store.open_appeal(item.cluster_id)
        if appeal is not None and appeal.original_decider == viewer.user_id:
            return item  # they may look, but the appeal is for someone else to take
        now = self.clock()
        until = now + dt.timedelta(seconds=self.config.lease_seconds)
        self.store.lease_cluster(item.cluster_id, viewer.user_id, now, until)
        self.store.session.refresh(item)
        if item.leased_by != viewer.user_id:
            holder = self.store.user(item.leased_by) if item.leased_by else None
            raise LeaseError(
                f"{holder.email if holder else 'another moderator'} is reviewing this item "
                f"until {item.leased_until:%H:%M} UTC"
            )
        self._audit(viewer.email, ReviewAction.LEASE, f"cluster:{item.cluster_id}", {})
        return item

    def item_view(self, viewer: Viewer, item_id: int) -> ItemView:
        """What the item page shows (leases it first for moderators)."""
        require(viewer, QUEUE_READERS)
        item = (
            self.lease(viewer, item_id) if viewer.role in DECIDERS else self._item(viewer, item_id)
        )
        now = self.clock()
        scan = self.store.scan_item(item.scan_item_id)
        assert scan is not None
        facts = facts_of(scan)
        cluster = self.store.cluster(item.cluster_id)
        assert cluster is not None
        copies = self.store.cluster_items(item.cluster_id)
        scans = self.store.scan_items([c.scan_item_id for c in copies])
        case_ids = {int(c) for cand in facts.candidates for c in cand.get("cases") or []}
        cases = self.store.cases(sorted(case_ids))
        candidates = tuple(
            CandidateView(
                bank=str(c.get("bank")),
                purpose=str(c.get("purpose")),
                entry_id=c.get("entry"),
                signal=str(c.get("signal")),
                distance=c.get("distance"),
                cases=tuple(
                    self._case_label(viewer, int(cid), cases.get(int(cid)))
                    for cid in c.get("cases") or []
                ),
                verified=bool(c.get("verified")),
            )
            for c in facts.candidates
        )
        sightings = []
        evidence: list[str] = []
        for copy in copies:
            copy_scan = scans.get(copy.scan_item_id)
            if copy_scan is None:
                continue
            cf = facts_of(copy_scan)
            sightings.append(
                SightingView(
                    scan_item_id=copy.scan_item_id,
                    source=cf.source,
                    platform=cf.platform,
                    chat=cf.chat,
                    message_id=cf.message_id,
                    message_link=cf.message_link,
                    sender=cf.sender,
                    at=copy.created_at,
                )
            )
            evidence.extend(self._evidence_ids(cf))
        decisions = []
        for d in self.store.decisions(cluster.id):
            user = self.store.user(d.user_id)
            decisions.append(
                DecisionView(
                    d.outcome,
                    d.reason_code,
                    user.email if user else "?",
                    d.at,
                    tuple(d.actions),
                    d.note,
                )
            )
        appeal = self.store.open_appeal(cluster.id)
        holder = self.store.user(item.leased_by) if item.leased_by else None
        return ItemView(
            item_id=item.id,
            scan_item_id=item.scan_item_id,
            cluster_id=cluster.id,
            cluster_status=cluster.status,
            cluster_outcome=cluster.outcome,
            version=item.version,
            priority=item.priority,
            deadline=item.deadline,
            breached=item.deadline <= now and item.status == OPEN,
            media_kind=facts.kind,
            has_media=self.media(viewer, item_id, probe=True) is not None,
            pdq=facts.pdq,
            candidates=candidates,
            sightings=tuple(sightings),
            caption=caption_parts(facts.caption),
            evidence=tuple(evidence),
            decisions=tuple(decisions),
            open_appeal_id=appeal.id if appeal else None,
            leased_by=holder.email if holder else None,
            lease_until=item.leased_until,
            reasons=facts.reasons,
        )

    def _case_label(self, viewer: Viewer, case_id: int, case: Any) -> str:
        if viewer.role is Role.ADVOCATE and case_id in viewer.case_ids and case is not None:
            contact = f", contact {case.contact}" if case.contact else ""
            return f"case {case.case_number}{contact}"
        return f"case #{case_id} (identity hidden)"

    def _evidence_ids(self, facts: _Facts) -> list[str]:
        if self.ledger is None or not (facts.platform and facts.chat and facts.message_id):
            return []
        items = self.ledger.items_for_message(facts.platform, facts.chat, facts.message_id)
        return [f"{i.id} ({i.status})" for i in items]

    # -- wellness --------------------------------------------------------------------------------

    def _day_start(self) -> dt.datetime:
        now = self.clock()
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    def exposure(self, viewer: Viewer) -> Exposure:
        """Reveals by this user today against the soft limit."""
        today = self.store.count_audit(viewer.email, ReviewAction.REVEAL.value, self._day_start())
        return Exposure(today, self.config.exposure_soft_limit)

    def reveal(self, viewer: Viewer, item_id: int) -> Exposure:
        """Record that the viewer un-blurred an item (audit log), and count it."""
        require(viewer, QUEUE_READERS)
        item = self._item(viewer, item_id)
        self._audit(
            viewer.email,
            ReviewAction.REVEAL,
            f"item:{item.id}",
            {"scan_item": item.scan_item_id, "cluster": item.cluster_id},
        )
        return self.exposure(viewer)

    def revealed(self, viewer: Viewer, item_id: int) -> bool:
        """Whether the viewer revealed this item today."""
        return self.store.revealed(viewer.email, f"item:{item_id}", self._day_start())

    def media(self, viewer: Viewer, item_id: int, *, probe: bool = False) -> bytes | None:
        """The item's media bytes: spooled by the pipeline or, failing that, from the
        evidence store (which logs the view in the ledger). ``probe`` only says whether
        some source exists, without opening evidence."""
        require(viewer, QUEUE_READERS)
        item = self._item(viewer, item_id)
        spooled = self.store.spooled_media(item.scan_item_id)
        if spooled is not None:
            return spooled
        scan = self.store.scan_item(item.scan_item_id)
        if scan is None:
            return None
        facts = facts_of(scan)
        if self.ledger is None or not (facts.platform and facts.chat and facts.message_id):
            return None
        captured = self.ledger.items_for_message(facts.platform, facts.chat, facts.message_id)
        if not captured:
            return None
        if probe:
            return b""
        if self.opener is None:
            return None
        return self.opener(captured[0].id, viewer.email, f"review item {item_id}")

    # -- decisions -------------------------------------------------------------------------------

    def decide(self, viewer: Viewer, request: DecisionRequest) -> DecisionResult:
        """Decide a cluster: every copy, now and later, follows the decision.

        Checks, in order, that change nothing when they fail: the role, the reason
        code and actions (a tampered form), the cluster is still open (a double
        submit), the moderator still holds the lease and the form is not stale, and,
        for an appeal, that a different moderator decides it.
        """
        require(viewer, DECIDERS)
        outcome = request.outcome
        if request.reason_code not in REASON_CODES[outcome]:
            raise BadReviewInputError(
                f"{request.reason_code!r} is not a reason code for {outcome.value}"
            )
        actions = list(dict.fromkeys(request.actions))
        if outcome is Outcome.CONFIRMED:
            unknown = [a for a in actions if a not in CONFIRM_ACTIONS]
            if unknown or not actions:
                raise BadReviewInputError(
                    "confirm needs one or more of: " + ", ".join(CONFIRM_ACTIONS)
                )
        elif actions:
            raise BadReviewInputError("only a confirmation takes actions")
        if outcome is Outcome.ESCALATED and request.escalate_to not in (
            "senior",
            "law_enforcement",
        ):
            raise BadReviewInputError("escalate to 'senior' or 'law_enforcement'")
        item = self._item(viewer, request.item_id)
        if item.cluster_id != request.cluster_id:
            raise BadReviewInputError("the item is not in that cluster")
        cluster = self.store.cluster(request.cluster_id, lock=True)
        assert cluster is not None
        if cluster.status != OPEN or item.status != OPEN:
            raise AlreadyDecidedError(
                f"cluster {cluster.id} was already decided ({cluster.outcome}); nothing changed"
            )
        now = self.clock()
        appeal = self.store.open_appeal(cluster.id)
        if appeal is not None and appeal.original_decider == viewer.user_id:
            raise SameModeratorError("an appeal must be decided by a different moderator")
        if item.leased_by != viewer.user_id or item.leased_until is None or item.leased_until < now:
            raise LeaseError("your lease on this item expired; open it again from the queue")
        if item.version != request.version:
            raise LeaseError("the item changed since you opened it; reload it and decide again")
        return self._apply(viewer, cluster, outcome, request, actions, appeal, now)

    def _apply(
        self,
        viewer: Viewer,
        cluster: ReviewCluster,
        outcome: Outcome,
        request: DecisionRequest,
        actions: list[str],
        appeal: ReviewAppeal | None,
        now: dt.datetime,
    ) -> DecisionResult:
        items = self.store.decide_open_items(cluster.id, now)
        all_copies = self.store.cluster_items(cluster.id)
        scan_ids = [i.scan_item_id for i in all_copies]
        recorded = list(actions)
        if outcome is Outcome.NOT_VIOLATION:
            entries = sorted(self._entries_of(scan_ids))
            kind = "disable_entry" if request.disable_entries else "lower_entry"
            recorded = [f"{kind}:{e}" for e in entries]
            if request.disable_entries:
                self._disable_entries(scan_ids, viewer.email)
        if outcome is Outcome.ESCALATED:
            recorded = [f"escalate:{request.escalate_to}"]
        # Needs more info and senior escalation leave the cluster in the queue.
        stays_open = outcome is Outcome.NEEDS_INFO or (
            outcome is Outcome.ESCALATED and request.escalate_to == "senior"
        )
        queued: list[str] = []
        if outcome is Outcome.CONFIRMED:
            queued = self._queue_actions(scan_ids, actions, now)
        decision = ReviewDecision(
            cluster_id=cluster.id,
            user_id=viewer.user_id,
            outcome=outcome.value,
            reason_code=request.reason_code,
            note=(request.note or None),
            actions=recorded,
            appeal_id=appeal.id if appeal else None,
            at=now,
        )
        self.store.add(decision)
        if appeal is not None:
            previous = cluster.outcome
            appeal.status = "upheld" if previous == outcome.value else "overturned"
            appeal.closed_at = now
            self._audit(
                viewer.email,
                ReviewAction.APPEAL_DECIDED,
                f"appeal:{appeal.id}",
                {"status": appeal.status, "outcome": outcome.value},
            )
        cluster.outcome = outcome.value
        cluster.actions = actions if outcome is Outcome.CONFIRMED else []
        cluster.decided_by = viewer.user_id
        cluster.decided_at = now
        cluster.status = DECIDED
        if stays_open:
            cluster.status = OPEN
            self.store.reopen_items(cluster.id)
        self.store.session.flush()
        facts: dict[str, Any] = {
            "cluster": cluster.id,
            "outcome": outcome.value,
            "reason": request.reason_code,
            "actions": recorded,
            "copies": scan_ids,
            "appeal": appeal.id if appeal else None,
        }
        self._audit(viewer.email, ReviewAction.DECISION, f"cluster:{cluster.id}", facts)
        if self.ledger is not None:
            self.ledger.record_event(f"review:cluster:{outcome.value}", viewer.email, facts)
        exported: tuple[str, ...] = ()
        if outcome is Outcome.ESCALATED and request.escalate_to == "law_enforcement":
            exported = self._export(cluster.id, scan_ids, viewer.email)
        return DecisionResult(
            cluster_id=cluster.id,
            outcome=outcome,
            copies=len(items),
            queued_actions=tuple(queued),
            scan_item_ids=tuple(scan_ids),
            export_items=exported,
        )

    def bulk_decide(
        self, viewer: Viewer, requests: Sequence[DecisionRequest]
    ) -> list[DecisionResult]:
        """Decide several clusters with one reason (each checked as :meth:`decide` does;
        the first refusal stops the batch and the edge rolls it all back)."""
        results = []
        for request in requests:
            self.lease(viewer, request.item_id)
            item = self._item(viewer, request.item_id)
            results.append(
                self.decide(
                    viewer,
                    DecisionRequest(
                        cluster_id=item.cluster_id,
                        item_id=item.id,
                        version=item.version,
                        outcome=request.outcome,
                        reason_code=request.reason_code,
                        actions=request.actions,
                        note=request.note,
                        escalate_to=request.escalate_to,
                        disable_entries=request.disable_entries,
                    ),
                )
            )
        return results

    def _entries_of(self, scan_ids: Sequence[str]) -> set[int]:
        entries: set[int] = set()
        for scan in self.store.scan_items(scan_ids).values():
            for c in facts_of(scan).candidates:
                if c.get("entry") is not None:
                    entries.add(int(c["entry"]))
        return entries

    def _disable_entries(self, scan_ids: Sequence[str], actor: str) -> None:
        from redress.store.service import BankService

        by_bank: dict[str, set[int]] = defaultdict(set)
        for scan in self.store.scan_items(scan_ids).values():
            for c in facts_of(scan).candidates:
                if c.get("entry") is not None:
                    by_bank[str(c["bank"])].add(int(c["entry"]))
        banks = BankService(self.store.session, actor=f"review:{actor}")
        for name, ids in by_bank.items():
            banks.remove(name, sorted(ids))

    def _queue_actions(
        self, scan_ids: Sequence[str], kinds: Sequence[str], now: dt.datetime
    ) -> list[str]:
        """Put each action for each copy in the pipeline's outbox (once per item and kind)."""
        from redress.pipeline.store import ScanStore

        outbox = ScanStore(self.store.session)
        existing = self.store.existing_action_ids(scan_ids)
        queued = []
        for scan_id in scan_ids:
            for kind in kinds:
                action_id = f"{scan_id}:{kind}"
                if action_id in existing:
                    continue
                outbox.add_action(scan_id, kind, now)
                queued.append(action_id)
        self.store.session.flush()
        return queued

    def _export(self, cluster_id: int, scan_ids: Sequence[str], actor: str) -> tuple[str, ...]:
        if self.ledger is None or self.exporter is None or self.config.export_dir is None:
            return ()
        ids: list[str] = []
        for scan in self.store.scan_items(scan_ids).values():
            facts = facts_of(scan)
            if facts.platform and facts.chat and facts.message_id:
                ids.extend(
                    i.id
                    for i in self.ledger.items_for_message(
                        facts.platform, facts.chat, facts.message_id
                    )
                )
        ids = list(dict.fromkeys(ids))
        if not ids:
            return ()
        self.config.export_dir.mkdir(parents=True, exist_ok=True)
        stamp = self.clock().strftime("%Y%m%dT%H%M%S")
        self.exporter(ids, self.config.export_dir / f"cluster-{cluster_id}-{stamp}.zip", actor)
        return tuple(ids)

    def outbox(self, scan_ids: Sequence[str]) -> list[tuple[str, str]]:
        """``(action id, status)`` of the outbox rows of these items."""
        return [(a.id, a.status) for a in self.store.actions_of(scan_ids)]

    # -- appeals ---------------------------------------------------------------------------------

    def appeal(self, viewer: Viewer, cluster_id: int, appellant: str, statement: str) -> int:
        """Record an affected user's appeal: the cluster goes back to the queue, for a
        different moderator than the one who decided it."""
        require(viewer, DECIDERS)
        if not appellant.strip() or not statement.strip():
            raise BadReviewInputError("an appeal needs the appellant and their statement")
        cluster = self.store.cluster(cluster_id, lock=True)
        if cluster is None:
            raise ReviewItemNotFoundError(f"no cluster {cluster_id}")
        if cluster.status != DECIDED:
            raise BadReviewInputError("only a decided cluster can be appealed")
        if self.store.open_appeal(cluster_id) is not None:
            raise AlreadyDecidedError("this cluster already has an open appeal")
        appeal = ReviewAppeal(
            cluster_id=cluster_id,
            appellant=appellant.strip()[:200],
            statement=statement.strip(),
            status=OPEN,
            original_decider=cluster.decided_by,
            opened_at=self.clock(),
        )
        self.store.add(appeal)
        cluster.status = OPEN
        self.store.reopen_items(cluster_id)
        self._audit(
            viewer.email, ReviewAction.APPEAL_OPEN, f"cluster:{cluster_id}", {"appeal": appeal.id}
        )
        if self.ledger is not None:
            self.ledger.record_event(
                "review:appeal:opened", viewer.email, {"cluster": cluster_id, "appeal": appeal.id}
            )
        return appeal.id

    def appeals(self, viewer: Viewer) -> list[ReviewAppeal]:
        """Every appeal (for the appeals page)."""
        require(viewer, DECIDERS | {Role.AUDITOR})
        return self.store.appeals()

    # -- reports ---------------------------------------------------------------------------------

    def dashboard(self, viewer: Viewer, days: int = 14) -> Dashboard:
        """Open items, breaches, time to decision and matches over time."""
        require(viewer, REPORT_READERS)
        now = self.clock()
        items = self.store.all_items()
        open_items = [i for i in items if i.status == OPEN]
        waits = sorted(
            (i.decided_at - i.created_at).total_seconds() for i in items if i.decided_at is not None
        )
        median = statistics.median(waits) if waits else None
        p90 = waits[min(len(waits) - 1, int(0.9 * len(waits)))] if waits else None
        first = (now - dt.timedelta(days=days - 1)).date()
        labels = tuple((first + dt.timedelta(days=n)).isoformat() for n in range(days))
        by_bank: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
        by_chat: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(labels, 0))
        for i in items:
            day = i.created_at.date().isoformat()
            if day in labels:
                by_bank[i.bank or "(no match)"][day] += 1
                by_chat[i.chat or i.source][day] += 1
        return Dashboard(
            open_items=len(open_items),
            open_clusters=len({i.cluster_id for i in open_items}),
            breaches=sum(1 for i in open_items if i.deadline <= now),
            median_seconds=median,
            p90_seconds=p90,
            by_outcome=self.store.decision_counts(),
            by_bank_day=dict(by_bank),
            by_chat_day=dict(by_chat),
            days=labels,
        )

    def audit_log(self, viewer: Viewer, action: str | None = None) -> list[AuditRow]:
        """The console's audit log, newest first."""
        require(viewer, AUDIT_READERS)
        return [
            AuditRow(e.id, e.at, e.actor, e.action, e.target, dict(e.details))
            for e in self.store.audit_events(action=action)
        ]

    def audit_csrf(self, actor: str, path: str) -> None:
        """Record a refused form (a CSRF token that did not match)."""
        self._audit(actor, ReviewAction.CSRF_REJECTED, path[:200], {})

    def _audit(
        self, actor: str, action: ReviewAction, target: str, details: dict[str, Any]
    ) -> None:
        self.store.audit(self.clock(), actor, action.value, target, details)
