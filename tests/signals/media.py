"""Media for the signals tests, generated at run time (no binaries in the repo)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

PDQ_DATA = "pdq"
BRIDGE = "pdq/bridge-mods/aaa-orig.jpg"


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Encode a Pillow image to bytes in ``fmt``."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def make_video(
    path: Path,
    *,
    frames: int = 12,
    fps: int = 6,
    size: tuple[int, int] = (96, 64),
    rotation: int | None = None,
    pts: list[int] | None = None,
    source: Image.Image | None = None,
    colorspace: int | None = None,
    codec: str = "libx264",
) -> Path:
    """Write a small video of moving gradients (or of ``source``), optionally rotated/VFR.

    The container follows the file's suffix (.mp4, .mov, .mkv, .webm), the
    codec is ``codec`` (H.264 by default).

    ``colorspace`` tags the stream's colour matrix (an AVColorSpace, e.g. 1 for BT.709); the
    pixels are the same YUV either way.
    """
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        if pts is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index in range(frames):
            if source is not None:
                array = np.asarray(source.convert("RGB").resize((width, height)))
            else:
                y, x = np.mgrid[0:height, 0:width]
                phase = index * 7
                array = np.stack(
                    [(x * 3 + phase) % 256, (y * 4 + phase) % 256, ((x + y) * 2) % 256], axis=2
                ).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
            if pts is not None:
                frame.pts = pts[index]
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_audio(path: Path, seconds: float = 0.5) -> Path:
    """Write a short AAC-in-MP4 tone: an audio-only file."""
    rate = 22050
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        samples = int(rate * seconds)
        tone = (np.sin(np.arange(samples) * 2 * np.pi * 440 / rate) * 0.3).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
