"""Request size limit: 413 in the error envelope for a body over the configured bound,
whether it announces its length or streams in chunks."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from redress.pipeline.errors import PayloadTooLargeError
from redress.web.errors import redress_error_response


class BodyLimitMiddleware:
    """Refuse bodies larger than ``max_bytes`` (pure ASGI)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PayloadTooLargeError(
            f"request body is larger than the {self.max_bytes} bytes allowed"
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.max_bytes:
                    await redress_error_response(too_large)(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, limited, send)
