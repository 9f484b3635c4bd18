"""Recognise a media format from its first bytes, never from the file name.

A PNG named ``.jpg`` is a PNG; a text file named ``.jpg`` is not an image.
Only the formats Redress can decode are recognised; audio formats are
recognised too, so that an audio file is reported as ``audio_only`` rather
than as an unknown type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Literal

from redress.signals.errors import EmptyFileError, UnsupportedMediaError

# How many leading bytes sniff() needs to see.
SNIFF_BYTES = 512

SniffedKind = Literal["image", "video", "audio"]

# ISO base media file format brands (the "ftyp" box) that mean a still image.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
# Brands of audio-only MPEG-4 files.
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
# QuickTime files may start with any of these atoms instead of "ftyp".
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


@dataclass(frozen=True, slots=True)
class MediaFormat:
    """A recognised format: what kind of media it holds, its Pillow/FFmpeg name and MIME type."""

    kind: SniffedKind
    name: str
    media_type: str

    @property
    def is_jpeg(self) -> bool:
        """JPEG is the format the reduced-scale fast path applies to."""
        return self.name == "JPEG"


def sniff(head: bytes) -> MediaFormat:
    """Identify the format from the first :data:`SNIFF_BYTES` bytes of a file.

    Raises :class:`EmptyFileError` for no bytes and :class:`UnsupportedMediaError`
    for anything that is not a recognised image, video or audio format.
    """
    if not head:
        raise EmptyFileError("the file is empty (0 bytes)")
    found = _sniff(head)
    if found is None:
        raise UnsupportedMediaError(
            "not an image or video format Redress can hash"
            " (JPEG, PNG, GIF, WebP, BMP, TIFF, HEIC/HEIF, AVIF, MP4, MOV, MKV, WebM, AVI)"
        )
    return found


def _sniff(head: bytes) -> MediaFormat | None:
    if head.startswith(b"\xff\xd8\xff"):
        return MediaFormat("image", "JPEG", "image/jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return MediaFormat("image", "PNG", "image/png")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return MediaFormat("image", "GIF", "image/gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return MediaFormat("image", "WEBP", "image/webp")
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return MediaFormat("video", "avi", "video/x-msvideo")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return MediaFormat("audio", "wav", "audio/wav")
    if head.startswith(b"BM") and len(head) >= 14:
        return MediaFormat("image", "BMP", "image/bmp")
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return MediaFormat("image", "TIFF", "image/tiff")
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if head[4:8] in _QUICKTIME_ATOMS:
        return MediaFormat("video", "mov", "video/quicktime")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        if b"webm" in head:
            return MediaFormat("video", "webm", "video/webm")
        return MediaFormat("video", "matroska", "video/x-matroska")
    if head.startswith(b"FLV\x01"):
        return MediaFormat("video", "flv", "video/x-flv")
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return MediaFormat("video", "mpegts", "video/mp2t")
    if head.startswith(b"\x00\x00\x01\xba"):
        return MediaFormat("video", "mpeg", "video/mpeg")
    if head.startswith(b"OggS"):
        # Ogg may hold Theora video; the decoder decides, audio-only is reported then.
        return MediaFormat("video", "ogg", "video/ogg")
    if head.startswith((b"ID3", b"fLaC")) or (
        len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
    ):
        return MediaFormat("audio", "mp3" if not head.startswith(b"fLaC") else "flac", "audio/mpeg")
    return None


def _sniff_iso_bmff(head: bytes) -> MediaFormat:
    major = head[8:12]
    box_size = int.from_bytes(head[0:4], "big")
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    brands = {major, *compatible}
    if major in _AVIF_BRANDS:
        return MediaFormat("image", "AVIF", "image/avif")
    if major in _HEIF_BRANDS or (
        brands & _HEIF_BRANDS and not brands & {b"isom", b"mp41", b"mp42"}
    ):
        return MediaFormat("image", "HEIF", "image/heic")
    if major in _AUDIO_BRANDS:
        return MediaFormat("audio", "mp4", "audio/mp4")
    if major == b"qt  ":
        return MediaFormat("video", "mov", "video/quicktime")
    return MediaFormat("video", "mp4", "video/mp4")


def declares_more_than(stream: IO[bytes], total: int, fmt: MediaFormat) -> bool:
    """Whether the container's own length fields promise more bytes than the ``total`` present.

    Used after a decoder fails, to tell a truncated file (cut short in a
    download or copy) from a corrupt one. Knows RIFF (WebP, AVI, WAV) and
    ISO-BMFF (MP4, MOV, HEIF) top-level boxes; ``False`` for other formats.
    """
    stream.seek(0)
    head = stream.read(12)
    if head[:4] == b"RIFF":
        return int.from_bytes(head[4:8], "little") + 8 > total
    if fmt.name not in {"mp4", "mov", "HEIF", "AVIF"}:
        return False
    offset = 0
    while offset + 8 <= total:
        stream.seek(offset)
        header = stream.read(16)
        size = int.from_bytes(header[0:4], "big")
        if size == 1 and len(header) >= 16:  # 64-bit "largesize"
            size = int.from_bytes(header[8:16], "big")
        elif size == 0:  # box runs to the end of the file
            return False
        if size < 8:  # not a box: corrupt rather than short
            return False
        offset += size
    return offset > total
