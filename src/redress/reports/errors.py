"""Errors of notices, statements of reasons and transparency reports.

Hierarchy (all under :class:`redress.errors.RedressError`)::

    RedressError
    ├── InvalidInputError                              400
    │   ├── NoticeIncompleteError  notice_incomplete   422: names every missing or invalid field
    │   └── BadReportInputError    report_bad_input    a bad period, format or outbound notice
    ├── NotFoundError                                  404
    │   └── NoticeNotFoundError    notice_not_found    no such notice or outbound notice
    └── MailError                  mail_failed         502: the SMTP server refused or is down
"""

from __future__ import annotations

from collections.abc import Mapping

from redress.errors import InvalidInputError, NotFoundError, RedressError


class NoticeIncompleteError(InvalidInputError):
    """A notice lacks required fields; ``fields`` maps each one to what is wrong."""

    code = "notice_incomplete"
    status_code = 422

    def __init__(self, fields: Mapping[str, str]) -> None:
        self.fields = dict(fields)
        listed = "; ".join(f"{name}: {why}" for name, why in self.fields.items())
        super().__init__(f"the notice is incomplete — {listed}")


class BadReportInputError(InvalidInputError):
    """A bad report period or format, or an outbound notice that cannot be built."""

    code = "report_bad_input"


class NoticeNotFoundError(NotFoundError):
    """No such inbound or outbound notice."""

    code = "notice_not_found"


class MailError(RedressError):
    """The SMTP server could not be reached or refused the message."""

    code = "mail_failed"
    status_code = 502
