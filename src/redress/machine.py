"""What machine a benchmark ran on: every `redress bench` records it beside its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["cpu_model", "describe_machine"]


def cpu_model() -> str:
    """The processor's model name (from /proc/cpuinfo on Linux; platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux, or no /proc: fall back below
    return platform.processor() or platform.machine()


def describe_machine() -> str:
    """CPU model, core count, memory and OS in one line, for the benchmark record."""
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        memory = ""  # sysconf names are POSIX-only
    return (
        f"{cpu_model()}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}"
    )
