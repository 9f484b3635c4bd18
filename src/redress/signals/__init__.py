"""Signals: media bytes in, hashes out (PDQ, vPDQ, MD5, SHA-256)."""

from redress.signals.types import PdqHash, SignalKind

__all__ = ["PdqHash", "SignalKind"]
