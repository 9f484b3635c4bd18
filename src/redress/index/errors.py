"""Errors the index raises (codes listed in docs/errors.md).

Hierarchy::

    RedressError
    ├── InvalidInputError                 400
    │   ├── BadPdqHashError               400  bad_pdq_hash: not 64 hex digits / 32 bytes
    │   ├── BadThresholdError             400  bad_threshold: distance outside 0-256
    │   ├── BadEntryIdError               400  bad_entry_id: entry ID not a 64-bit integer
    │   └── BadVideoPolicyError           400  bad_video_policy: a share outside 0-1
    └── SnapshotError                     500  index_snapshot: base of snapshot failures
        ├── SnapshotNotFoundError         404  snapshot_not_found
        ├── SnapshotCorruptError          500  snapshot_corrupt: bad magic, size or checksum
        └── SnapshotVersionError          500  snapshot_version: written by a newer format
"""

from __future__ import annotations

from redress.errors import InvalidInputError, RedressError


class BadPdqHashError(InvalidInputError):
    """A PDQ hash that is not 64 hex digits or 32 bytes."""

    code = "bad_pdq_hash"


class BadThresholdError(InvalidInputError):
    """A match distance outside 0-256 bits."""

    code = "bad_threshold"


class BadEntryIdError(InvalidInputError):
    """An entry ID that does not fit a signed 64-bit integer, or IDs and hashes that disagree."""

    code = "bad_entry_id"


class BadVideoPolicyError(InvalidInputError):
    """A video match policy with a share outside 0-1 or a quality outside 0-100."""

    code = "bad_video_policy"


class SnapshotError(RedressError):
    """An index snapshot could not be written or read."""

    code = "index_snapshot"
    status_code = 500


class SnapshotNotFoundError(SnapshotError):
    """No snapshot file at the given path."""

    code = "snapshot_not_found"
    status_code = 404


class SnapshotCorruptError(SnapshotError):
    """A snapshot whose magic, size, layout or checksums are wrong (truncated, overwritten)."""

    code = "snapshot_corrupt"


class SnapshotVersionError(SnapshotError):
    """A snapshot written in a format version this Redress does not read."""

    code = "snapshot_version"
