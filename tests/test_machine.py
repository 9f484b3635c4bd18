"""The machine description every benchmark records."""

from __future__ import annotations

import os

from redress.machine import cpu_model, describe_machine


def test_description_names_the_cpu_and_its_cores() -> None:
    line = describe_machine()
    assert line.startswith(cpu_model())
    assert f"{os.cpu_count()} cores" in line
