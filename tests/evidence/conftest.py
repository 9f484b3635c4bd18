"""Fixtures of the evidence tests: a migrated database, settings and a service in a transaction."""

from __future__ import annotations

import contextlib
import datetime as dt
import http.server
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.evidence.interfaces import CaptureRequest, MessageFacts, Trigger, TriggerKind
from redress.evidence.service import EvidenceService, build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.store.db import make_engine
from redress.store.migrate import upgrade


@dataclass
class EvidenceEnv:
    """A migrated database and settings; ``service()`` opens one committed transaction."""

    engine: Engine
    settings: Settings

    @contextlib.contextmanager
    def service(self, **overrides: Any) -> Iterator[EvidenceService]:
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        with Session(self.engine) as session, session.begin():
            yield build_evidence_service(SqlEvidenceStore(session), settings)


def make_env(url: str, home: Path, **settings: Any) -> EvidenceEnv:
    upgrade(url)
    base = Settings(home=home, database_url=url, evidence_checkpoint_interval=4)
    return EvidenceEnv(make_engine(url), base.model_copy(update=settings))


@pytest.fixture
def env(database_url: str, redress_home: Path) -> Iterator[EvidenceEnv]:
    """Evidence on SQLite and on PostgreSQL."""
    environment = make_env(database_url, redress_home)
    yield environment
    environment.engine.dispose()


@pytest.fixture
def sqlite_env(sqlite_url: str, redress_home: Path) -> Iterator[EvidenceEnv]:
    """Evidence on SQLite only (for package tests, where the backend does not matter)."""
    environment = make_env(sqlite_url, redress_home)
    yield environment
    environment.engine.dispose()


def capture_request(n: int = 0, **changes: Any) -> CaptureRequest:
    """A realistic capture of a Telegram photo (the bytes are a tiny JPEG-like blob)."""
    request = CaptureRequest(
        content=b"\xff\xd8\xff\xe0" + f"photo {n}".encode() * 50 + b"\xff\xd9",
        media_type="image/jpeg",
        message=MessageFacts(
            platform="telegram",
            chat_id="-1001234567890",
            chat_title="MaskPark mirror",
            message_id=str(1000 + n),
            message_link=f"https://t.me/c/1234567890/{1000 + n}",
            sender_id="777000",
            sender_name="uploader",
            forward_origin={"type": "channel", "chat": {"id": -1009876543210}},
            message_date=dt.datetime(2026, 11, 24, 22, 0, n % 60, tzinfo=dt.UTC),
            edit_date=None,
            self_destruct_seconds=60,
            content_protected=True,
            caption="caption text",
            raw={"message_id": 1000 + n, "has_protected_content": True},
        ),
        trigger=Trigger(TriggerKind.MATCH, reference=f"match-{n}", case_id="case-1", distance=4),
        connector="telegram-bot",
        operator="helpline-ngo",
        file_name=f"photo{n}.jpg",
    )
    return replace(request, **changes)


# -- a local RFC 3161 authority: OpenSSL's `ts -reply` behind a tiny HTTP server -----------------


@dataclass(frozen=True)
class LocalTsa:
    url: str
    ca_file: Path
    folder: Path

    def reply_for(self, data: bytes) -> bytes:
        """A real response from this TSA for ``data`` (to forge 'a timestamp for other data')."""
        query = self.folder / "other.tsq"
        (self.folder / "other.dat").write_bytes(data)
        subprocess.run(
            [
                "openssl",
                "ts",
                "-query",
                "-data",
                str(self.folder / "other.dat"),
                "-sha256",
                "-cert",
                "-out",
                str(query),
            ],
            check=True,
            capture_output=True,
        )
        return _openssl_reply(self.folder, query.read_bytes())


# No `certs =` line: OpenSSL would add the CA certificate to the token's certificate SET
# without DER-sorting it, and strict DER parsers (rfc3161-client's among them) reject
# such sets. The root comes from REDRESS_EVIDENCE_TSA_CA_FILE instead (docs/evidence.md).
_TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config1
[ tsa_config1 ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _openssl_reply(folder: Path, query: bytes) -> bytes:
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        q, r = Path(tmp) / "q.tsq", Path(tmp) / "r.tsr"
        q.write_bytes(query)
        subprocess.run(
            [
                "openssl",
                "ts",
                "-reply",
                "-config",
                str(folder / "ts.cnf"),
                "-queryfile",
                str(q),
                "-out",
                str(r),
            ],
            check=True,
            capture_output=True,
        )
        return r.read_bytes()


def _make_tsa_folder(folder: Path) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=Redress Test Root CA",
        "-days",
        "30",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "tsa.key",
        "-out",
        "tsa.csr",
        "-subj",
        "/CN=Redress Test TSA",
        cwd=folder,
    )
    (folder / "tsa.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=critical,timeStamping\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        "tsa.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "tsa.pem",
        "-days",
        "30",
        "-extfile",
        "tsa.ext",
        cwd=folder,
    )
    (folder / "tsaserial").write_text("01\n")
    (folder / "ts.cnf").write_text(_TSA_CONFIG.format(dir=folder))


@pytest.fixture(scope="session")
def local_tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTsa]:
    """An RFC 3161 TSA on 127.0.0.1 backed by `openssl ts -reply` and a CA made here."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tsa")
    _make_tsa_folder(folder)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                try:
                    body, status = _openssl_reply(folder, query), 200
                except subprocess.CalledProcessError:
                    body, status = b"bad request", 400
            self.send_response(status)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LocalTsa(
            f"http://127.0.0.1:{server.server_address[1]}/tsa", folder / "ca.pem", folder
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def capture_items(environment: EvidenceEnv, count: int) -> list[str]:
    """Capture ``count`` items in one transaction; return their IDs."""
    with environment.service() as service:
        return [service.capture(capture_request(n)).id for n in range(count)]
