"""No picture leaves the device: every request the hashing page makes is watched.

The page (and its workers) may only load its own page and static scripts;
no request may carry a body, and none may contain bytes of the files hashed.
A control test proves the watch sees an upload when there is one.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Request, Route

from redress.web.browser import STATIC_PREFIX, PortalSite, hash_in_page


class RequestWatch:
    """Records every request of a browser context, including its workers'."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []

    def route(self, route: Route, request: Request) -> None:
        self.seen.append((request.method, request.url, request.post_data_buffer or b""))
        route.continue_()


def samples_of(path: Path, size: int = 64, count: int = 8) -> list[bytes]:
    """Byte runs spread over a file: any upload of the file would contain them."""
    raw = path.read_bytes()
    step = max(1, (len(raw) - size) // count)
    return [raw[k : k + size] for k in range(0, max(1, len(raw) - size), step)][:count]


def leaks(bodies: list[bytes], files: list[Path]) -> list[str]:
    found = []
    for path in files:
        for sample in samples_of(path):
            if any(sample in body for body in bodies):
                found.append(path.name)
                break
    return found


def test_hashing_images_and_a_video_sends_no_file_bytes(
    chromium: Browser, portal_site: PortalSite, shared_data: Path
) -> None:
    files = [
        shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg",
        shared_data / "pdq" / "reg-test-input" / "exif-rotn" / "exif-rotn-6.jpg",
        shared_data / "pdq" / "misc-images" / "c.png",
        shared_data / "vpdq" / "videos" / "chair-19-sd-bar.mp4",
    ]
    context = chromium.new_context()
    watch = RequestWatch()
    context.route("**/*", watch.route)
    sockets: list[str] = []
    page = context.new_page()
    page.on("websocket", lambda socket: sockets.append(socket.url))
    already = len(portal_site.requests)
    page.goto(portal_site.url + "/")
    results = hash_in_page(page, files)["results"]
    context.close()

    assert all("error" not in r for r in results)
    assert sockets == []
    origin = urlsplit(portal_site.url)
    for method, url, body in watch.seen:
        parts = urlsplit(url)
        if parts.scheme in ("blob", "data"):
            continue  # local to the page: the selected video played from memory
        assert (parts.scheme, parts.netloc) == (origin.scheme, origin.netloc), url
        assert method == "GET", url
        assert parts.path == "/" or parts.path.startswith(STATIC_PREFIX), url
        assert body == b"", url
    # The workers' script loads were seen too, so the watch covers them.
    assert any(url.endswith("/static/portal/worker.js") for _, url, _ in watch.seen)
    served = portal_site.requests[already:]
    assert {r.method for r in served} == {"GET"}
    assert all(r.body == b"" for r in served)
    assert leaks([body for _, _, body in watch.seen] + [r.body for r in served], files) == []


def test_the_watch_sees_an_upload_from_a_worker(
    chromium: Browser, portal_site: PortalSite, shared_data: Path
) -> None:
    """Control: if a worker did post a picture, the checks above would catch it."""
    photo = shared_data / "pdq" / "bridge-mods" / "aaa-orig.jpg"
    context = chromium.new_context()
    watch = RequestWatch()
    context.route("**/*", watch.route)
    page = context.new_page()
    page.goto(portal_site.url + "/")
    page.set_input_files("#files", str(photo))
    outcome = page.evaluate(
        """async () => {
          const source = `onmessage = async (e) => {
            try {
              await fetch(e.data.url, { method: "POST", body: e.data.file });
              postMessage("sent");
            } catch (err) {
              postMessage(String(err));
            }
          };`;
          const worker = new Worker(URL.createObjectURL(new Blob([source])));
          const file = document.getElementById("files").files[0];
          return await new Promise((resolve) => {
            worker.onmessage = (event) => resolve(event.data);
            worker.postMessage({ url: location.origin + "/upload", file });
          });
        }"""
    )
    context.close()
    assert outcome == "sent"
    uploads = [(m, u, b) for m, u, b in watch.seen if m == "POST"]
    assert len(uploads) == 1
    assert leaks([b for _, _, b in uploads], [photo]) == [photo.name]
