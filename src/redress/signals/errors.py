"""Errors raised while turning media bytes into signals.

Every failure to hash one file is a :class:`HashError` with a stable ``code``;
batch callers (``redress hash``, the scan pipeline) report it for that file and
carry on with the others. Decoder exceptions (Pillow, PyAV) are translated into
these at the seam and chained with ``from``.

Hierarchy (this module)::

    RedressError
    └── HashError                    400  media that cannot be hashed
        ├── EmptyFileError           400  empty_file
        ├── TruncatedMediaError      400  truncated
        ├── CorruptMediaError        400  corrupt
        ├── UnsupportedMediaError    415  unsupported_type
        ├── MediaTooLargeError       413  too_large, too_many_pixels, too_long
        ├── NoVideoFramesError       400  no_video_frames, audio_only
        └── UnreadableFileError      400  unreadable, not_found
"""

from __future__ import annotations

from redress.errors import RedressError


class HashError(RedressError):
    """A file that cannot be turned into signals; ``code`` says why."""

    code = "hash_error"
    status_code = 400


class EmptyFileError(HashError):
    """The file has no bytes at all."""

    code = "empty_file"


class TruncatedMediaError(HashError):
    """The file starts like a known format but ends before the picture does."""

    code = "truncated"


class CorruptMediaError(HashError):
    """The file is of a known format but its data cannot be decoded."""

    code = "corrupt"


class UnsupportedMediaError(HashError):
    """The bytes are not an image or video format Redress decodes."""

    code = "unsupported_type"
    status_code = 415


class MediaTooLargeError(HashError):
    """Over a configured limit: bytes (too_large), pixels (too_many_pixels) or seconds (too_long).

    Pixel limits guard against decompression bombs: a small file that declares
    an enormous picture.
    """

    code = "too_large"
    status_code = 413


class NoVideoFramesError(HashError):
    """A video container without a decodable picture: no frames, or audio only."""

    code = "no_video_frames"


class UnreadableFileError(HashError):
    """The file could not be read from disk (missing, a folder, no permission)."""

    code = "unreadable"
