"""Web layer. So far: the victim portal's in-browser hashing assets
(``static/portal/``), the hash-set definition they share with the server
(:mod:`redress.web.hashset`) and the headless-Chromium harness that proves them
(:mod:`redress.web.browser`, ``redress bench portal``)."""

__all__: list[str] = []
