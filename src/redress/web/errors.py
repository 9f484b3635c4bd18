"""Errors of the web layer (the victim portal's hashing assets so far).

Hierarchy (this module)::

    RedressError
    ├── InvalidInputError
    │   └── HashSetInvalidError       400  a submitted hash set breaks hashset.json
    └── BrowserUnavailableError       500  headless Chromium or Playwright is missing
"""

from __future__ import annotations

from redress.errors import InvalidInputError, RedressError


class HashSetInvalidError(InvalidInputError):
    """A hash set (what the portal sends for one file) does not follow hashset.json."""

    code = "bad_hash_set"
    status_code = 400


class BrowserUnavailableError(RedressError):
    """`redress bench portal` needs Playwright and a Chromium executable."""

    code = "browser_unavailable"
    status_code = 500
