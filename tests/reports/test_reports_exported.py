"""The reports package's public names are pinned (plug-in points must not drift)."""

from __future__ import annotations

import redress.reports


def test_public_names_are_pinned() -> None:
    assert set(redress.reports.__all__) == {
        "BadReportInputError",
        "Mail",
        "MailError",
        "Mailer",
        "NoticeConfig",
        "NoticeIn",
        "NoticeIncompleteError",
        "NoticeNotFoundError",
        "NoticeOutcome",
        "NoticeRead",
        "NoticeService",
        "NoticeStatus",
        "Regime",
        "Relation",
        "Sender",
        "SmtpMailer",
        "StatementConfig",
        "StatementService",
        "dsa_schema",
    }
    for name in redress.reports.__all__:
        assert getattr(redress.reports, name) is not None
