"""Policy: from match candidates and context signals to an outcome and a priority.

Defaults protect against a hash list being abused to censor: a match on a
bank of victim-submitted hashes goes to human review; a match on a bank of
moderator-confirmed content may act automatically. Per bank and per source
rules override that; exact byte matches can be set to act. Priority (0-100)
rises with several independent matches, several reporters, a caption that
publishes personal details, a trusted flagger, or a plug-in classifier's
score. docs/pipeline.md has examples of the TOML file :func:`load_policy` reads.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redress.actions.interfaces import ActionKind
from redress.pipeline.errors import BadPolicyError
from redress.pipeline.interfaces import ClassifierScore, Outcome
from redress.pipeline.text import PersonalDetail
from redress.signals.types import SignalKind
from redress.store.interfaces import BankPurpose, MatchResult

DEFAULT_ACT_ACTIONS = (ActionKind.DELETE_MESSAGE, ActionKind.BLOCK_REUPLOAD, ActionKind.WEBHOOK)
# A hash list can be abused to censor: only moderator-confirmed banks act without a human.
DEFAULT_PURPOSE_OUTCOMES = {
    BankPurpose.VICTIM_CASES: Outcome.REVIEW,
    BankPurpose.CONFIRMED_VIOLATIONS: Outcome.ACT,
    BankPurpose.EXTERNAL_EXCHANGE: Outcome.REVIEW,
    BankPurpose.INTERNAL: Outcome.REVIEW,
}


@dataclass(frozen=True, slots=True)
class BankRule:
    """Overrides for one bank: its outcome, its outcome on exact byte matches, its actions."""

    outcome: Outcome | None = None
    exact_outcome: Outcome | None = None
    actions: tuple[ActionKind, ...] | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class SourceRule:
    """Overrides for one source: the strongest outcome it may cause, whether it is trusted."""

    max_outcome: Outcome = Outcome.ACT
    trusted_flagger: bool = False
    priority: int = 0


@dataclass(frozen=True, slots=True)
class PolicySignals:
    """Context about an item beyond its hashes."""

    source: str = "api"
    reporters: int = 0
    trusted_flagger: bool = False
    personal_details: tuple[PersonalDetail, ...] = ()
    classifier: ClassifierScore | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's verdict for one item."""

    outcome: Outcome
    priority: int
    reasons: tuple[str, ...]
    actions: tuple[ActionKind, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole policy; the defaults are the safe ones described in the module docstring."""

    purposes: Mapping[BankPurpose, Outcome] = field(
        default_factory=lambda: dict(DEFAULT_PURPOSE_OUTCOMES)
    )
    exact_outcome: Outcome | None = None
    act_actions: tuple[ActionKind, ...] = DEFAULT_ACT_ACTIONS
    classifier_review_score: float = 0.8
    review_personal_details: bool = True
    # A user's report (or a trusted flagger's) of media that matches nothing still
    # deserves a human look: never-seen secretly filmed content is reported, not banked.
    review_reports: bool = True
    banks: Mapping[str, BankRule] = field(default_factory=dict)
    sources: Mapping[str, SourceRule] = field(default_factory=dict)

    def _bank_outcome(self, match: MatchResult) -> tuple[Outcome, BankRule]:
        rule = self.banks.get(match.bank_name, BankRule())
        if match.signal in (SignalKind.MD5, SignalKind.SHA256):
            exact = rule.exact_outcome or self.exact_outcome
            if exact is not None:
                return exact, rule
        if rule.outcome is not None:
            return rule.outcome, rule
        return self.purposes.get(match.bank_purpose, Outcome.REVIEW), rule

    def decide(self, matches: Sequence[MatchResult], signals: PolicySignals) -> Decision:
        """The outcome, priority, reasons and actions for one item."""
        source = self.sources.get(signals.source, SourceRule())
        reasons: list[str] = []
        outcome = Outcome.IGNORE
        actions: list[ActionKind] = []
        priority = 0
        for match in matches:
            bank_outcome, rule = self._bank_outcome(match)
            if match.verified:
                # Hashes came near and local features confirmed it: strong, but not the
                # hash match a bank's automatic actions were set for. A human decides.
                reasons.append(f"verified_near_miss:{match.bank_name}")
                if bank_outcome.rank > Outcome.REVIEW.rank:
                    bank_outcome = Outcome.REVIEW
            if bank_outcome.rank > outcome.rank:
                outcome = bank_outcome
            if bank_outcome is Outcome.ACT:
                for action in rule.actions if rule.actions is not None else self.act_actions:
                    if action not in actions:
                        actions.append(action)
            priority = max(priority, 50 + rule.priority)
            reasons.append(f"match:{match.bank_name}:{match.signal}")
        # Independent matches: different banks or different victims' cases.
        independent = {(m.bank_id, m.case_ids or (m.entry_id,)) for m in matches}
        if len(independent) > 1:
            priority += min(30, 10 * (len(independent) - 1))
            reasons.append(f"independent_matches:{len(independent)}")
        if signals.reporters > 1:
            priority += min(20, 5 * (signals.reporters - 1))
            reasons.append(f"reporters:{signals.reporters}")
        if signals.personal_details:
            priority += 20
            kinds = sorted({d.kind.value for d in signals.personal_details})
            reasons.append("personal_details:" + ",".join(kinds))
            if outcome is Outcome.IGNORE and self.review_personal_details:
                outcome = Outcome.REVIEW
        if signals.trusted_flagger or source.trusted_flagger:
            priority += 15
            reasons.append("trusted_flagger")
        reported = signals.reporters > 0 or signals.trusted_flagger or source.trusted_flagger
        if reported and outcome is Outcome.IGNORE and self.review_reports:
            outcome = Outcome.REVIEW
            priority += 40
            reasons.append("reported")
        if signals.classifier is not None:
            score = signals.classifier
            priority += round(20 * max(0.0, min(1.0, score.score)))
            # A classifier only ever raises review priority; it never removes.
            if outcome is Outcome.IGNORE and score.score >= self.classifier_review_score:
                outcome = Outcome.REVIEW
                reasons.append(f"classifier:{score.label}:{score.score:.2f}")
        if outcome.rank > source.max_outcome.rank:
            reasons.append(f"source_cap:{signals.source}:{source.max_outcome}")
            outcome = source.max_outcome
        if outcome is not Outcome.ACT:
            actions = []
        priority = 0 if outcome is Outcome.IGNORE else max(1, min(100, priority + source.priority))
        return Decision(outcome, priority, tuple(reasons), tuple(actions))


def _outcome(value: Any, where: str) -> Outcome:
    try:
        return Outcome(value)
    except ValueError as exc:
        raise BadPolicyError(
            f"{where}: unknown outcome {value!r}; use ignore, review or act"
        ) from exc


def _actions(value: Any, where: str) -> tuple[ActionKind, ...]:
    if not isinstance(value, list):
        raise BadPolicyError(f"{where}: actions must be a list")
    try:
        return tuple(ActionKind(v) for v in value)
    except ValueError as exc:
        known = ", ".join(k.value for k in ActionKind)
        raise BadPolicyError(f"{where}: unknown action in {value!r}; known: {known}") from exc


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise BadPolicyError(f"[{key}] must be a table")
    return value


def policy_from_mapping(data: Mapping[str, Any]) -> Policy:
    """Build a :class:`Policy` from parsed TOML (see docs/pipeline.md for the keys)."""
    defaults = _table(data, "defaults")
    unknown = set(data) - {"defaults", "purposes", "banks", "sources"}
    if unknown:
        raise BadPolicyError(f"unknown policy sections: {sorted(unknown)}")
    banks = {}
    for name, rule in _table(data, "banks").items():
        where = f"banks.{name}"
        banks[name] = BankRule(
            outcome=_outcome(rule["outcome"], where) if "outcome" in rule else None,
            exact_outcome=(
                _outcome(rule["exact_outcome"], where) if "exact_outcome" in rule else None
            ),
            actions=_actions(rule["actions"], where) if "actions" in rule else None,
            priority=int(rule.get("priority", 0)),
        )
    sources = {}
    for name, rule in _table(data, "sources").items():
        where = f"sources.{name}"
        sources[name] = SourceRule(
            max_outcome=_outcome(rule.get("max_outcome", "act"), where),
            trusted_flagger=bool(rule.get("trusted_flagger", False)),
            priority=int(rule.get("priority", 0)),
        )
    purposes = dict(DEFAULT_PURPOSE_OUTCOMES)
    for name, value in _table(data, "purposes").items():
        try:
            purpose = BankPurpose(name)
        except ValueError as exc:
            known = ", ".join(p.value for p in BankPurpose)
            raise BadPolicyError(
                f"purposes: unknown bank purpose {name!r}; known: {known}"
            ) from exc
        purposes[purpose] = _outcome(value, f"purposes.{name}")
    return Policy(
        purposes=purposes,
        exact_outcome=(
            _outcome(defaults["exact"], "defaults.exact") if "exact" in defaults else None
        ),
        act_actions=(
            _actions(defaults["actions"], "defaults.actions")
            if "actions" in defaults
            else DEFAULT_ACT_ACTIONS
        ),
        classifier_review_score=float(defaults.get("classifier_review_score", 0.8)),
        review_personal_details=bool(defaults.get("review_personal_details", True)),
        review_reports=bool(defaults.get("review_reports", True)),
        banks=banks,
        sources=sources,
    )


def load_policy(path: Path | None) -> Policy:
    """Read a TOML policy file; ``None`` or a missing file gives the default policy."""
    if path is None or not path.exists():
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BadPolicyError(f"cannot read policy {path}: {exc}") from exc
    return policy_from_mapping(data)
