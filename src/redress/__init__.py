"""Redress: find re-shared non-consensual intimate images, get them removed, keep evidence.

The package is laid out by domain (see docs/architecture.md); data flows one way:
signals -> index -> pipeline -> review -> actions, with evidence and reports
recording everything and the store underneath.
"""

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
