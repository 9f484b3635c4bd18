"""Statements of reasons to Telegram users: a private ``sendMessage`` from the bot.

A bot may only message a user who opened a chat with it, so "Forbidden" is an
expected answer: it is reported as a failed delivery, not raised.
"""

from __future__ import annotations

from redress.connectors.interfaces import StatementMessage
from redress.connectors.telegram.client import BotApiClient
from redress.connectors.telegram.errors import TelegramError


class TelegramStatementSender:
    """:class:`~redress.connectors.interfaces.StatementSender` over the Bot API."""

    platform = "telegram"

    def __init__(self, client: BotApiClient) -> None:
        self.client = client

    async def send_statement(self, message: StatementMessage) -> tuple[bool, str]:
        """Send the statement to the user privately; ``(ok, detail)``."""
        try:
            user_id = int(message.user_id)
        except ValueError:
            return False, f"not a Telegram user ID: {message.user_id!r}"
        try:
            sent = await self.client.send_message(user_id, message.text)
        except TelegramError as exc:
            return False, f"{exc.code}: {exc.message}"
        return True, f"sendMessage ok (message {sent.get('message_id')})"
