"""Signals: media bytes in, hashes out (PDQ, vPDQ, MD5, SHA-256).

Call :func:`hash_file` or :func:`hash_bytes` with :class:`HashOptions`; get a
:class:`MediaSignals`. Failures are :class:`~redress.signals.errors.HashError`
subclasses with stable codes (docs/errors.md). docs/signals.md describes the
formats and the three hashing modes.
"""

from redress.signals.errors import HashError
from redress.signals.options import HashOptions
from redress.signals.pdq import dihedral_hashes
from redress.signals.service import MediaSignals, hash_bytes, hash_file
from redress.signals.types import PdqHash, SignalKind, VpdqFrame
from redress.signals.vpdq import read_vpdq_text, write_vpdq_text

__all__ = [
    "HashError",
    "HashOptions",
    "MediaSignals",
    "PdqHash",
    "SignalKind",
    "VpdqFrame",
    "dihedral_hashes",
    "hash_bytes",
    "hash_file",
    "read_vpdq_text",
    "write_vpdq_text",
]
