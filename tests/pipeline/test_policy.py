"""Policy: safe defaults, per-bank and per-source overrides, priority signals, TOML."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from redress.actions.interfaces import ActionKind
from redress.pipeline.errors import BadPolicyError
from redress.pipeline.interfaces import ClassifierScore, Outcome
from redress.pipeline.policy import (
    BankRule,
    Policy,
    PolicySignals,
    SourceRule,
    load_policy,
    policy_from_mapping,
)
from redress.pipeline.text import find_personal_details
from redress.signals.types import SignalKind
from redress.store.interfaces import BankPurpose, MatchResult


def match(
    bank: str = "victims",
    purpose: BankPurpose = BankPurpose.VICTIM_CASES,
    *,
    entry: int = 1,
    signal: SignalKind = SignalKind.PDQ,
    distance: int = 4,
    cases: tuple[int, ...] = (),
    bank_id: int | None = None,
) -> MatchResult:
    return MatchResult(
        distance,
        bank_id if bank_id is not None else hash(bank) % 1000,
        bank,
        purpose,
        entry,
        signal,
        cases,
    )


def test_no_match_is_ignored() -> None:
    decision = Policy().decide([], PolicySignals())
    assert decision.outcome is Outcome.IGNORE
    assert decision.priority == 0
    assert decision.actions == ()


def test_victim_bank_matches_go_to_review_not_removal() -> None:
    decision = Policy().decide([match()], PolicySignals())
    assert decision.outcome is Outcome.REVIEW
    assert decision.actions == ()


def test_confirmed_bank_matches_act_with_default_actions() -> None:
    decision = Policy().decide(
        [match("confirmed", BankPurpose.CONFIRMED_VIOLATIONS)], PolicySignals()
    )
    assert decision.outcome is Outcome.ACT
    assert decision.actions == (
        ActionKind.DELETE_MESSAGE,
        ActionKind.BLOCK_REUPLOAD,
        ActionKind.WEBHOOK,
    )


def test_a_verified_near_miss_of_a_confirmed_picture_goes_to_review_not_removal() -> None:
    verified = replace(match("confirmed", BankPurpose.CONFIRMED_VIOLATIONS), verified=True)
    decision = Policy().decide([verified], PolicySignals())
    assert decision.outcome is Outcome.REVIEW
    assert decision.actions == ()
    assert "verified_near_miss:confirmed" in decision.reasons
    # Beside a hash match of another bank that acts, the item still acts on that one.
    both = Policy().decide(
        [verified, match("other", BankPurpose.CONFIRMED_VIOLATIONS, entry=2)], PolicySignals()
    )
    assert both.outcome is Outcome.ACT


def test_exact_matches_act_only_when_configured() -> None:
    exact = match(signal=SignalKind.SHA256, distance=0)
    assert Policy().decide([exact], PolicySignals()).outcome is Outcome.REVIEW
    acting = Policy(exact_outcome=Outcome.ACT)
    assert acting.decide([exact], PolicySignals()).outcome is Outcome.ACT
    # A near (PDQ) match on the same bank still goes to review.
    assert acting.decide([match()], PolicySignals()).outcome is Outcome.REVIEW


def test_bank_rule_overrides_purpose_and_actions() -> None:
    policy = Policy(
        banks={"victims": BankRule(outcome=Outcome.ACT, actions=(ActionKind.DELETE_MESSAGE,))}
    )
    decision = policy.decide([match()], PolicySignals())
    assert decision.outcome is Outcome.ACT
    assert decision.actions == (ActionKind.DELETE_MESSAGE,)


def test_source_cap_keeps_a_source_from_acting() -> None:
    policy = Policy(sources={"helpline": SourceRule(max_outcome=Outcome.REVIEW)})
    confirmed = [match("confirmed", BankPurpose.CONFIRMED_VIOLATIONS)]
    decision = policy.decide(confirmed, PolicySignals(source="helpline"))
    assert decision.outcome is Outcome.REVIEW
    assert decision.actions == ()
    assert "source_cap:helpline:review" in decision.reasons
    assert policy.decide(confirmed, PolicySignals(source="platform")).outcome is Outcome.ACT


def test_priority_rises_with_each_signal() -> None:
    one = Policy().decide([match()], PolicySignals()).priority
    two_cases = (
        Policy().decide([match(cases=(1,)), match(entry=2, cases=(2,))], PolicySignals()).priority
    )
    reported = Policy().decide([match()], PolicySignals(reporters=4)).priority
    doxxed = (
        Policy()
        .decide(
            [match()], PolicySignals(personal_details=tuple(find_personal_details("13812345678")))
        )
        .priority
    )
    trusted = Policy().decide([match()], PolicySignals(trusted_flagger=True)).priority
    assert one == 50
    assert two_cases > one
    assert reported > one
    assert doxxed > one
    assert trusted > one


def test_the_same_case_matched_twice_is_not_independent() -> None:
    same = Policy().decide([match(cases=(7,)), match(entry=2, cases=(7,))], PolicySignals())
    assert same.priority == 50


def test_personal_details_alone_send_to_review() -> None:
    details = tuple(find_personal_details("call 13812345678"))
    decision = Policy().decide([], PolicySignals(personal_details=details))
    assert decision.outcome is Outcome.REVIEW
    assert decision.reasons == ("personal_details:phone",)


def test_classifier_only_raises_review_priority_never_acts() -> None:
    high = PolicySignals(classifier=ClassifierScore("nudity", 0.95))
    decision = Policy().decide([], high)
    assert decision.outcome is Outcome.REVIEW
    assert decision.actions == ()
    low = Policy().decide([], PolicySignals(classifier=ClassifierScore("nudity", 0.2)))
    assert low.outcome is Outcome.IGNORE


def test_a_report_of_unmatched_media_goes_to_review_never_to_removal() -> None:
    reported = Policy().decide([], PolicySignals(reporters=1))
    assert reported.outcome is Outcome.REVIEW
    assert reported.actions == ()
    assert "reported" in reported.reasons
    flagged = Policy().decide([], PolicySignals(trusted_flagger=True))
    assert flagged.outcome is Outcome.REVIEW
    assert flagged.priority > reported.priority  # trusted flaggers first (DSA Art. 22)
    quiet = Policy(review_reports=False).decide([], PolicySignals(reporters=1))
    assert quiet.outcome is Outcome.IGNORE


def test_priority_is_capped_at_100() -> None:
    matches = [match(f"b{n}", entry=n, cases=(n,), bank_id=n) for n in range(10)]
    signals = PolicySignals(
        reporters=50,
        trusted_flagger=True,
        personal_details=tuple(find_personal_details("13812345678")),
    )
    assert Policy().decide(matches, signals).priority == 100


POLICY_TOML = """
[defaults]
exact = "act"
actions = ["delete_message", "block_reupload"]

[purposes]
external_exchange = "ignore"

[banks.mod-confirmed]
outcome = "act"
actions = ["delete_message", "restrict_user", "block_reupload", "webhook"]

[banks.helpline-hashes]
exact_outcome = "review"
priority = 10

[sources.ngo-scanner]
max_outcome = "review"
trusted_flagger = true
"""


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_TOML, encoding="utf-8")
    policy = load_policy(path)
    assert policy.exact_outcome is Outcome.ACT
    assert policy.act_actions == (ActionKind.DELETE_MESSAGE, ActionKind.BLOCK_REUPLOAD)
    assert policy.purposes[BankPurpose.EXTERNAL_EXCHANGE] is Outcome.IGNORE
    assert policy.purposes[BankPurpose.VICTIM_CASES] is Outcome.REVIEW
    exchange = match("stopncii", BankPurpose.EXTERNAL_EXCHANGE)
    assert policy.decide([exchange], PolicySignals()).outcome is Outcome.IGNORE
    exact_helpline = match("helpline-hashes", signal=SignalKind.MD5, distance=0)
    assert policy.decide([exact_helpline], PolicySignals()).outcome is Outcome.REVIEW
    exact_other = match("other", signal=SignalKind.MD5, distance=0)
    assert policy.decide([exact_other], PolicySignals()).outcome is Outcome.ACT
    ngo = policy.decide([match("mod-confirmed")], PolicySignals(source="ngo-scanner"))
    assert ngo.outcome is Outcome.REVIEW
    assert "trusted_flagger" in ngo.reasons


def test_missing_policy_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_policy(tmp_path / "absent.toml") == Policy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[defaults]\nexact = "delete"', "unknown outcome"),
        ('[banks.x]\nactions = ["nuke"]', "unknown action"),
        ('[purposes]\nvictims = "act"', "unknown bank purpose"),
        ("[extra]\nx = 1", "unknown policy sections"),
        ("[defaults\n", "cannot read policy"),
    ],
)
def test_bad_policy_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadPolicyError, match=message) as err:
        load_policy(path)
    assert err.value.code == "bad_policy"


def test_mapping_without_sections_is_the_default() -> None:
    assert policy_from_mapping({}) == Policy()
