"""Errors of the review console.

Hierarchy (all under :class:`redress.errors.RedressError`)::

    RedressError
    ├── InvalidInputError                          400
    │   ├── BadReviewInputError    review_bad_input      a tampered or incomplete form
    │   └── UserExistsError        review_user_exists    409: the e-mail already has an account
    ├── NotFoundError                              404
    │   └── ReviewItemNotFoundError review_not_found     no such item/cluster/appeal (or not yours)
    ├── LoginFailedError           login_failed     401  wrong e-mail or password
    ├── AccountLockedError         account_locked   423  too many failed logins; wait
    ├── NotLoggedInError           not_logged_in    401  no session, or it expired
    ├── RoleForbiddenError         role_forbidden   403  the role may not do this
    ├── CsrfError                  csrf_failed      403  the form's CSRF token is missing or wrong
    ├── LeaseError                 lease_lost       409  someone else holds it, or the lease expired
    ├── AlreadyDecidedError        already_decided  409  the cluster was decided already
    └── SameModeratorError         same_moderator   409  an appeal must go to a different moderator
"""

from __future__ import annotations

from redress.errors import InvalidInputError, NotFoundError, RedressError


class BadReviewInputError(InvalidInputError):
    """A form field that is missing, unknown or out of range (tampered forms land here)."""

    code = "review_bad_input"


class UserExistsError(InvalidInputError):
    """An account with this e-mail already exists."""

    code = "review_user_exists"
    status_code = 409


class ReviewItemNotFoundError(NotFoundError):
    """No such review item, cluster or appeal visible to this user."""

    code = "review_not_found"


class LoginFailedError(RedressError):
    """Wrong e-mail or password (the message never says which)."""

    code = "login_failed"
    status_code = 401


class AccountLockedError(RedressError):
    """Too many failed logins in a row: the account is locked for a while."""

    code = "account_locked"
    status_code = 423


class NotLoggedInError(RedressError):
    """No console session, or it expired."""

    code = "not_logged_in"
    status_code = 401


class RoleForbiddenError(RedressError):
    """The user's role may not open this page or do this."""

    code = "role_forbidden"
    status_code = 403


class CsrfError(RedressError):
    """The form's CSRF token is missing or does not belong to this session."""

    code = "csrf_failed"
    status_code = 403
    actor: str = ""  # who sent the refused form (for the audit log)


class LeaseError(RedressError):
    """The item is leased to another moderator, or this moderator's lease expired."""

    code = "lease_lost"
    status_code = 409


class AlreadyDecidedError(RedressError):
    """The cluster was decided already (a double submit, or someone else was quicker)."""

    code = "already_decided"
    status_code = 409


class SameModeratorError(RedressError):
    """An appeal must be decided by someone other than the original moderator."""

    code = "same_moderator"
    status_code = 409
