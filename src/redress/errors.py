"""The one error hierarchy every Redress domain raises.

``RedressError`` carries a stable machine-readable ``code``, a human message and
the HTTP status the web layer answers with. Each domain defines its own
subclasses in its ``errors.py``; the CLI prints them without a traceback and
the API renders them in one JSON envelope. docs/errors.md lists every code.

Hierarchy (this module)::

    RedressError
    ├── ConfigurationError      500  settings that cannot work
    ├── InvalidInputError       400  input that is malformed
    └── NotFoundError           404  a named thing does not exist
"""

from __future__ import annotations


class RedressError(Exception):
    """Base of every error Redress raises on purpose.

    ``code`` is stable (tests and API clients rely on it); ``message`` is for people.
    """

    code: str = "redress_error"
    status_code: int = 500

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code

    def __str__(self) -> str:
        return self.message


class ConfigurationError(RedressError):
    """Settings or environment that cannot work (a bad URL, an unreadable key file)."""

    code = "configuration_error"
    status_code = 500


class InvalidInputError(RedressError):
    """Input that is malformed: bad hex, a wrong length, an out-of-range threshold."""

    code = "invalid_input"
    status_code = 400


class NotFoundError(RedressError):
    """A named thing (bank, case, item) does not exist."""

    code = "not_found"
    status_code = 404
