"""Value types every domain uses to talk about hashes.

A PDQ hash travels between domains as :class:`PdqHash` (32 raw bytes, with
the quality PDQ reported); in bulk (the index, the store's cold start) as a
NumPy ``uint8`` array of shape ``(n, 32)``. The hex form is Meta's: 64
lowercase hex digits, most significant nibble first, exactly as
``threatexchange`` and StopNCII write it.
"""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass

from redress.errors import InvalidInputError

PDQ_BYTES = 32
PDQ_HEX_LEN = 64
# Meta's threshold: frames and images under this PDQ quality are not matched on.
VPDQ_QUALITY_MIN = 50
_HEX = frozenset(string.hexdigits)


class SignalKind(enum.StrEnum):
    """The kinds of signal a bank entry or a scanned item can carry."""

    PDQ = "pdq"
    PDQ_SET = "pdq-set"
    VPDQ = "vpdq"
    MD5 = "md5"
    SHA256 = "sha256"


def parse_pdq_hex(text: str) -> bytes:
    """Parse 64 hex digits into 32 bytes, with a clear error for anything else."""
    value = text.strip()
    if len(value) != PDQ_HEX_LEN:
        raise InvalidInputError(
            f"a PDQ hash is {PDQ_HEX_LEN} hex digits; got {len(value)} characters",
            code="bad_pdq_hash",
        )
    if not _HEX.issuperset(value):
        raise InvalidInputError(
            "a PDQ hash may contain only hex digits 0-9a-f", code="bad_pdq_hash"
        )
    return bytes.fromhex(value)


@dataclass(frozen=True, slots=True)
class PdqHash:
    """One PDQ hash: 256 bits as 32 bytes, and PDQ's quality score (0-100)."""

    bits: bytes
    quality: int = 100

    def __post_init__(self) -> None:
        if len(self.bits) != PDQ_BYTES:
            raise InvalidInputError(
                f"a PDQ hash is {PDQ_BYTES} bytes; got {len(self.bits)}", code="bad_pdq_hash"
            )
        if not 0 <= self.quality <= 100:
            raise InvalidInputError(
                f"PDQ quality is 0-100; got {self.quality}", code="bad_pdq_quality"
            )

    @classmethod
    def from_hex(cls, text: str, quality: int = 100) -> PdqHash:
        """Build from Meta's 64-hex-digit form."""
        return cls(parse_pdq_hex(text), quality)

    @property
    def hex(self) -> str:
        """Meta's 64-hex-digit form."""
        return self.bits.hex()

    def distance(self, other: PdqHash) -> int:
        """Hamming distance in bits."""
        return (int.from_bytes(self.bits, "big") ^ int.from_bytes(other.bits, "big")).bit_count()


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """One hashed video frame, as Meta's vPDQ records it.

    ``frame`` is the 0-based decode-order frame number, ``quality`` the PDQ
    quality of that frame (the same as ``pdq.quality``) and ``ts`` its time
    in seconds from the start of the video.
    """

    frame: int
    quality: int
    pdq: PdqHash
    ts: float

    @property
    def hashable(self) -> bool:
        """Whether this frame's hash is reliable enough to match on (quality >= 50)."""
        return self.quality >= VPDQ_QUALITY_MIN
