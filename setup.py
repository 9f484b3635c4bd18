"""Build the C extensions (index search, PDQ); everything else is configured in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "redress.index._mih",
            sources=["src/redress/index/_mih.c"],
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        ),
        Extension(
            "redress.signals._pdq",
            sources=["src/redress/signals/_pdq.c"],
            # No fused multiply-add, ever: PDQ's bits must equal Meta's float arithmetic.
            extra_compile_args=[
                "-O3", "-std=c11", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"
            ],
        ),
    ]
)
