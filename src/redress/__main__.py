"""Allow ``python -m redress``."""

from redress.cli import main

main()
