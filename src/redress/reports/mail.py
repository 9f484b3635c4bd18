"""E-mail over SMTP (the standard library's client), behind the :class:`Mailer` Protocol."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from redress.reports.errors import MailError
from redress.reports.interfaces import Mail


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    """Sends plain-text mail through one SMTP server (STARTTLS and login when configured)."""

    host: str
    port: int = 25
    sender: str = "redress@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0

    def send(self, mail: Mail) -> None:
        """Deliver ``mail``; any refusal or network failure becomes :class:`MailError`."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1] or None)
        for name, value in mail.headers.items():
            message[name] = value
        message.set_content(mail.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as client:
                if self.starttls:
                    client.starttls(context=ssl.create_default_context())
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise MailError(
                f"could not send mail to {mail.to} via {self.host}:{self.port}: {exc}"
            ) from exc


def mailer_from_settings(settings: object) -> SmtpMailer | None:
    """The SMTP mailer the settings describe, or None when no SMTP host is set."""
    host = getattr(settings, "smtp_host", None)
    if not host:
        return None
    password = getattr(settings, "smtp_password", None)
    return SmtpMailer(
        host=host,
        port=getattr(settings, "smtp_port", 25),
        sender=getattr(settings, "smtp_from", "redress@localhost"),
        username=getattr(settings, "smtp_username", None),
        password=password.get_secret_value() if password is not None else None,
        starttls=getattr(settings, "smtp_starttls", False),
        timeout=getattr(settings, "smtp_timeout", 10.0),
    )
