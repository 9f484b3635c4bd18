"""Evidence: capture on arrival, encryption at rest, a tamper-evident ledger, packages."""

__all__: list[str] = []
