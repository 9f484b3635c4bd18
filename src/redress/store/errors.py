"""Errors of the store domain: banks, cases, imports.

Hierarchy (all are :class:`redress.errors.RedressError`)::

    RedressError
    ├── InvalidInputError (400)
    │   ├── UnknownSignalTypeError   400  unknown_signal_type: a signal type Redress does not store
    │   ├── BadHashError             400  bad_hash: hex of the wrong length or with non-hex digits
    │   ├── BadBankSettingError      400  bad_bank_setting: a name/purpose/threshold that fails
    │   └── ImportRejectedError      400  import_rejected: --strict import with malformed rows
    ├── NotFoundError (404)
    │   ├── BankNotFoundError        404  bank_not_found
    │   └── CaseNotFoundError        404  case_not_found
    ├── BankExistsError              409  bank_exists
    ├── CaseClosedError              409  case_closed: the case is Withdrawn or Deleted
    ├── WrongPinError                403  wrong_pin: the case PIN does not match
    ├── DatabaseNotReadyError        503  database_not_ready: PostgreSQL schema not upgraded
    ├── BackupError                  400  backup_error: a backup cannot be made or restored
    └── DatabaseUnavailableError     503  database_unavailable: unreachable, or refuses the account
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redress.errors import InvalidInputError, NotFoundError, RedressError


class UnknownSignalTypeError(InvalidInputError):
    """A signal type name that Redress does not store (e.g. ``VideoTMK``)."""

    code = "unknown_signal_type"


class BadHashError(InvalidInputError):
    """A hash value that is not valid hex of the length its signal type needs."""

    code = "bad_hash"


class BadBankSettingError(InvalidInputError):
    """A bank name, purpose or threshold that cannot work."""

    code = "bad_bank_setting"


@dataclass(frozen=True, slots=True)
class ImportProblem:
    """One malformed row of an import file: where it is and what is wrong with it."""

    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.code}] {self.message}"


class ImportRejectedError(InvalidInputError):
    """A ``--strict`` import found malformed rows, so nothing was applied."""

    code = "import_rejected"

    def __init__(self, problems: Sequence[ImportProblem], *, shown: int = 20) -> None:
        self.problems = tuple(problems)
        listed = "; ".join(str(p) for p in self.problems[:shown])
        more = f" (and {len(self.problems) - shown} more)" if len(self.problems) > shown else ""
        super().__init__(
            f"import rejected, nothing applied: {len(self.problems)} malformed row(s): "
            f"{listed}{more}"
        )


class BankNotFoundError(NotFoundError):
    """No bank has that name or ID."""

    code = "bank_not_found"


class CaseNotFoundError(NotFoundError):
    """No victim case has that case number."""

    code = "case_not_found"


class BankExistsError(RedressError):
    """A bank with that name already exists."""

    code = "bank_exists"
    status_code = 409


class CaseClosedError(RedressError):
    """The case is Withdrawn or Deleted; it cannot change any more."""

    code = "case_closed"
    status_code = 409


class WrongPinError(RedressError):
    """The PIN given does not match the case's PIN."""

    code = "wrong_pin"
    status_code = 403


class DatabaseNotReadyError(RedressError):
    """The database schema is missing or older than this version of Redress."""

    code = "database_not_ready"
    status_code = 503


class BackupError(RedressError):
    """A backup cannot be made (the destination is not empty) or restored (a file is
    missing or altered, the target already holds data, the database kinds differ)."""

    code = "backup_error"
    status_code = 400


class DatabaseUnavailableError(RedressError):
    """The database cannot be reached, or refuses this account (wrong credentials, no
    permission): the CLI says so instead of crashing."""

    code = "database_unavailable"
    status_code = 503
