"""Run the portal's in-browser hashing in a real headless Chromium.

Used by ``redress bench portal`` and by the tests that prove the JavaScript
hashes agree with the server's. Two pieces:

- :class:`PortalSite`: a tiny HTTP server on 127.0.0.1 that serves a blank
  page with a file input (``/``) and the portal's static assets
  (``/static/portal/...``) and records every request it receives, so a test
  can prove that no picture is ever sent.
- :func:`headless_chromium`: launches the system Chromium through
  Playwright (the browsers Playwright downloads are not used).

Files reach the page the way a victim's do: through ``<input type=file>``,
never over HTTP.
"""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from redress.web.errors import BrowserUnavailableError
from redress.web.hashset import portal_static_dir

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
STATIC_PREFIX = "/static/portal/"

HARNESS_HTML = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Redress in-browser hashing</title>
<link rel="icon" href="data:,"></head>
<body><input type="file" id="files" multiple></body></html>
"""

_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
}

# Runs in the page: hash the files chosen in #files and time it there.
HASH_FILES_JS = """async ({options, workers}) => {
  const { PortalHasher } = await import("/static/portal/hashing.js");
  const hasher = new PortalHasher({ workers });
  const files = document.getElementById("files").files;
  const started = performance.now();
  const results = await hasher.hashFiles(files, options);
  const elapsedMs = performance.now() - started;
  hasher.close();
  return { results, elapsedMs, workers: hasher.size };
}"""


@dataclass(frozen=True, slots=True)
class ServedRequest:
    """One request the site received."""

    method: str
    path: str
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _SiteServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the site records requests itself."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        self.server.record(ServedRequest(self.command, self.path, body))
        path = self.path.split("?", 1)[0]
        if self.command == "GET" and path == "/":
            self._send(200, "text/html; charset=utf-8", HARNESS_HTML)
            return
        name = path[len(STATIC_PREFIX) :] if path.startswith(STATIC_PREFIX) else ""
        target = self.server.static_dir / name
        if (
            self.command == "GET"
            and name
            and "/" not in name
            and not name.startswith(".")
            and target.is_file()
        ):
            kind = _CONTENT_TYPES.get(target.suffix, "application/octet-stream")
            self._send(200, kind, target.read_bytes())
            return
        self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    # The stdlib dispatches on these names; every method is recorded alike.
    do_GET = _answer  # noqa: N815
    do_POST = _answer  # noqa: N815
    do_PUT = _answer  # noqa: N815
    do_HEAD = _answer  # noqa: N815


class _SiteServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, static_dir: Path) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.static_dir = static_dir
        self._lock = threading.Lock()
        self.received: list[ServedRequest] = []

    def record(self, request: ServedRequest) -> None:
        with self._lock:
            self.received.append(request)


class PortalSite:
    """The harness page and the portal's static files on 127.0.0.1 (a free port)."""

    def __init__(self, static_dir: Path | None = None) -> None:
        self._server = _SiteServer(static_dir or portal_static_dir())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[ServedRequest]:
        """Every request received so far, in order."""
        with self._server._lock:
            return list(self._server.received)

    def __enter__(self) -> PortalSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def chromium_executable(path: str | None = None) -> str:
    """The Chromium to drive: ``path``, ``$REDRESS_CHROMIUM`` or /usr/bin/chromium."""
    chosen = path or os.environ.get("REDRESS_CHROMIUM") or DEFAULT_CHROMIUM
    if not os.access(chosen, os.X_OK):
        raise BrowserUnavailableError(
            f"no Chromium executable at {chosen} (Debian/Ubuntu: apt-get install chromium)"
        )
    return chosen


@contextmanager
def headless_chromium(executable: str | None = None) -> Iterator[Browser]:
    """Launch the system Chromium headless through Playwright; close it afterwards."""
    binary = chromium_executable(executable)
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserUnavailableError(
            "Playwright is not installed (pip install 'redress[bench]')"
        ) from exc
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=binary, args=list(CHROMIUM_ARGS))
        except PlaywrightError as exc:
            raise BrowserUnavailableError(f"Chromium at {binary} did not start: {exc}") from exc
        try:
            yield browser
        finally:
            browser.close()


def hash_in_page(
    page: Page,
    paths: Sequence[Path],
    *,
    options: dict[str, object] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Select ``paths`` in the harness page's file input and hash them there.

    Returns what the page returns: ``results`` (one per file, in order),
    ``elapsedMs`` (measured in the page) and ``workers``.
    """
    page.set_input_files("#files", [str(p) for p in paths])
    result: dict[str, Any] = page.evaluate(
        HASH_FILES_JS, {"options": options or {}, "workers": workers}
    )
    return result
