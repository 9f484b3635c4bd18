"""Fixtures of the reports tests (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reports_support import Inbox, World, smtp_server, world

from redress.config import Settings
from redress.reports.mail import SmtpMailer


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
def settings(redress_home: Path, database_url: str) -> Settings:
    return Settings(
        home=redress_home,
        database_url=database_url,
        pipeline_threads=1,
        notice_escalation_email="oncall@example.org",
    )


@pytest.fixture
def mailer(smtp: tuple[Inbox, int]) -> SmtpMailer:
    return SmtpMailer("127.0.0.1", smtp[1], sender="notices@redress.example")


@pytest.fixture
def inbox(smtp: tuple[Inbox, int]) -> Inbox:
    return smtp[0]


@pytest.fixture
def w(settings: Settings, mailer: SmtpMailer) -> Iterator[World]:
    with world(settings, mailer) as running:
        yield running
