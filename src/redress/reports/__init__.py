"""Notices, legal deadlines, statements of reasons and transparency reports (issue #10).

Inbound notices (TAKE IT DOWN Act, DSA Art. 16) start a clock and put the content
and its copies in review; every removal or restriction gets a statement of reasons;
outbound takedown notices go to hosting platforms until the content is gone; and
transparency reports count all of it. See docs/notices.md.
"""

from redress.reports.errors import (
    BadReportInputError,
    MailError,
    NoticeIncompleteError,
    NoticeNotFoundError,
)
from redress.reports.interfaces import (
    Mail,
    Mailer,
    NoticeIn,
    NoticeOutcome,
    NoticeRead,
    NoticeStatus,
    Regime,
    Relation,
    Sender,
)
from redress.reports.mail import SmtpMailer
from redress.reports.service import NoticeConfig, NoticeService
from redress.reports.statements import StatementConfig, StatementService, dsa_schema

__all__ = [
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
]
