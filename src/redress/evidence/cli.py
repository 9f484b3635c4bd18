"""Command-line commands of the evidence domain: thin wrappers over EvidenceService."""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import mimetypes
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from redress.config import Settings
from redress.evidence.errors import BadCaptureError, EvidenceKeyError, ExportError
from redress.evidence.interfaces import CaptureRequest, MessageFacts, Trigger, TriggerKind

if TYPE_CHECKING:
    from redress.evidence.service import EvidenceService

# The service, store, crypto and verifier modules are imported inside the
# commands: `redress --help` should not pay for the cryptography and database stack.

evidence_app = typer.Typer(
    help="Evidence: encrypted captures, the tamper-evident ledger, packages, verification.",
    no_args_is_help=True,
)

ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who is acting (logged); default: cli:<login name>.")
]


def _settings(ctx: typer.Context) -> Settings:
    from redress.cli import cli_state

    return cli_state(ctx).settings


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@contextlib.contextmanager
def _service(settings: Settings) -> Iterator[EvidenceService]:
    """A service in one transaction: committed when the block succeeds, rolled back if not."""
    from sqlalchemy.orm import Session

    from redress.evidence.service import build_evidence_service
    from redress.evidence.store import SqlEvidenceStore
    from redress.store.db import make_engine
    from redress.store.migrate import ensure_schema

    url = settings.effective_database_url
    ensure_schema(url)  # PostgreSQL is migrated by `redress db upgrade`, never here
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            yield build_evidence_service(SqlEvidenceStore(session), settings)
    finally:
        engine.dispose()


@evidence_app.command("key")
def key_command(ctx: typer.Context) -> None:
    """Print the ledger's public key and its fingerprint (give the fingerprint to verifiers)."""
    with _service(_settings(ctx)) as service:
        signer = service.ledger.signer
        typer.echo(f"origin:       {signer.origin}")
        typer.echo(f"fingerprint:  {signer.fingerprint}")
        typer.echo("              (SHA-256 of the 32-byte Ed25519 public key)")
        typer.echo(f"public key:   {base64.b64encode(signer.public_key).decode()}")
        typer.echo(f"note key:     {signer.verifier_key()}")
        typer.echo(signer.public_key_pem().decode().rstrip())


@evidence_app.command("capture")
def capture_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files to capture, byte for byte.")],
    operator: Annotated[str, typer.Option(help="Person or organisation collecting.")],
    platform: Annotated[str, typer.Option(help="Where the item was seen.")] = "file",
    chat_id: Annotated[str | None, typer.Option(help="Chat or group ID.")] = None,
    message_id: Annotated[str | None, typer.Option(help="Message ID.")] = None,
    link: Annotated[str | None, typer.Option(help="Message link.")] = None,
    trigger: Annotated[TriggerKind, typer.Option(help="Why it is captured.")] = TriggerKind.REPORT,
    reference: Annotated[str | None, typer.Option(help="The report or match ID.")] = None,
    case: Annotated[
        str | None, typer.Option(help="The victim case it belongs to (its number, RC-...).")
    ] = None,
    media_type: Annotated[str | None, typer.Option(help="Media type; default: guessed.")] = None,
) -> None:
    """Capture files as evidence (one JSON line per file; exits 1 if any failed)."""
    failed = False
    settings = _settings(ctx)
    case_id = None
    if case:
        # Items name a case by the store's case key, so withdrawal finds and erases them.
        from redress.store.interfaces import case_key
        from redress.store.store import SqlCaseStore

        with _service(settings) as service:
            case_id = case_key(SqlCaseStore(service.store.session).get_case(case).id)
    for path in paths:
        try:
            content = path.read_bytes()
            kind = media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            with _service(settings) as service:
                item = service.capture(
                    CaptureRequest(
                        content=content,
                        media_type=kind,
                        message=MessageFacts(
                            platform=platform,
                            chat_id=chat_id,
                            message_id=message_id,
                            message_link=link,
                        ),
                        trigger=Trigger(trigger, reference=reference, case_id=case_id),
                        connector="redress-cli",
                        operator=operator,
                        file_name=path.name,
                    )
                )
            typer.echo(
                json.dumps(
                    {
                        "path": str(path),
                        "item": item.id,
                        "sha256": item.sha256,
                        "seq": item.capture_seq,
                    }
                )
            )
        except OSError as exc:
            failed = True
            typer.echo(
                json.dumps(
                    {"path": str(path), "error": {"code": "unreadable", "message": exc.strerror}}
                )
            )
        except BadCaptureError as exc:
            failed = True
            typer.echo(
                json.dumps({"path": str(path), "error": {"code": exc.code, "message": exc.message}})
            )
    if failed:
        raise typer.Exit(1)


@evidence_app.command("show")
def show_command(ctx: typer.Context, item_id: str) -> None:
    """Print an item's facts and its chain of custody (nothing is decrypted)."""
    with _service(_settings(ctx)) as service:
        item = service.item(item_id)
        typer.echo(
            json.dumps(
                {k: str(v) if v is not None else None for k, v in vars(item).items()}, indent=2
            )
        )
        for entry in service.ledger.entries_for_item(item.id):
            typer.echo(
                f"{entry.seq:>10}  {entry.recorded_at.isoformat()}  {entry.kind}  {entry.actor}"
            )


@evidence_app.command("open")
def open_command(
    ctx: typer.Context,
    item_id: str,
    out: Annotated[Path, typer.Option("--out", help="Where to write the original bytes.")],
    purpose: Annotated[str, typer.Option(help="Why it is opened (logged).")],
    actor: ActorOption = None,
) -> None:
    """Decrypt one item to a file; the view is logged with the actor and purpose."""
    if out.exists():
        raise ExportError(f"{out} exists; refusing to overwrite it")
    with _service(_settings(ctx)) as service:
        opened = service.open(item_id, _actor(actor), purpose)
        out.write_bytes(opened.content)
    typer.echo(
        f"wrote {out} ({len(opened.content)} bytes); logged as ledger entry {opened.view_seq}"
    )


@evidence_app.command("export")
def export_command(
    ctx: typer.Context,
    item_ids: Annotated[list[str] | None, typer.Argument(help="Item IDs to export.")] = None,
    to: Annotated[Path, typer.Option("--to", help="The package to write (.zip).")] = Path(
        "evidence.zip"
    ),
    case: Annotated[
        str | None,
        typer.Option(
            "--case", help="Export every item captured for this case (its number, RC-...)."
        ),
    ] = None,
    recipient: Annotated[
        Path | None,
        typer.Option("--recipient", help="X25519 public key (PEM or base64) to encrypt items to."),
    ] = None,
    consistency_from: Annotated[
        list[int] | None,
        typer.Option("--consistency-from", help="Also prove consistency from this older size."),
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Write an evidence package: a zipped BagIt bag police can verify offline."""
    from redress.evidence.crypto import load_recipient_key

    recipient_key = load_recipient_key(recipient) if recipient else None
    with _service(_settings(ctx)) as service:
        ids = list(item_ids or [])
        if case:
            from redress.evidence.cases import item_ids_for_case_number

            ids.extend(item_ids_for_case_number(service, service.store.session, case))
        if not ids:
            raise ExportError("name items to export, or a --case with captured items")
        result = service.export(
            ids,
            to,
            _actor(actor),
            recipient=recipient_key,
            consistency_from=consistency_from or (),
        )
    typer.echo(
        f"wrote {result.path}: {len(result.item_ids)} items, "
        f"checkpoint size {result.checkpoint_size}"
    )
    typer.echo(f"signing key fingerprint: {result.key_fingerprint}")
    if result.encrypted_to:
        typer.echo(f"items encrypted to recipient key {result.encrypted_to}")
    typer.echo("give the recipient the fingerprint separately from the package")


@evidence_app.command("verify")
def verify_command(
    package: Path,
    key_fingerprint: Annotated[
        str, typer.Option("--key-fingerprint", help="The signing key fingerprint you trust.")
    ],
    previous_checkpoint: Annotated[
        Path | None, typer.Option("--previous-checkpoint", help="An older checkpoint you hold.")
    ] = None,
    recipient_key: Annotated[
        Path | None, typer.Option("--recipient-key", help="X25519 private key for encrypted items.")
    ] = None,
    extract_to: Annotated[
        Path | None,
        typer.Option("--extract-to", help="After a clean verification, write the items here."),
    ] = None,
) -> None:
    """Verify a package offline; exit 0 only when every check holds."""
    from redress.evidence.verify import load_recipient_private_key, verify_package

    try:
        previous = previous_checkpoint.read_bytes() if previous_checkpoint else None
        private = load_recipient_private_key(recipient_key) if recipient_key else None
    except (OSError, ValueError, TypeError) as exc:
        raise EvidenceKeyError(f"cannot read an input: {exc}") from exc
    report = verify_package(package, key_fingerprint, previous, private, extract_to=extract_to)
    for line in report.passed:
        typer.echo(f"ok    {line}")
    for failure in report.failures:
        typer.echo(f"FAIL  [{failure.code}] {failure.message}")
    if report.ok:
        typer.echo("VERIFIED")
        return
    typer.echo(f"NOT VERIFIED ({len(report.failures)} failed checks)")
    raise typer.Exit(1)


@evidence_app.command("audit")
def audit_command(
    ctx: typer.Context,
    no_decrypt: Annotated[
        bool, typer.Option("--no-decrypt", help="Skip decrypting every live item's blob.")
    ] = False,
) -> None:
    """Check the whole stored ledger, its checkpoints and every item; exit 0 only if all hold.

    For operators: after a crash, a restore from backup, or a disk that filled up.
    """
    from redress.evidence.audit import audit_ledger

    with _service(_settings(ctx)) as service:
        report = audit_ledger(service, decrypt=not no_decrypt)
    typer.echo(f"entries:     {report.size}")
    typer.echo(f"checkpoints: {report.checkpoints}")
    typer.echo(f"items:       {report.items} ({report.live_items} live)")
    if not no_decrypt:
        typer.echo(f"decrypted:   {report.decrypted}")
    for kind, count in report.kinds.items():
        typer.echo(f"  {kind}: {count}")
    for failure in report.failures:
        typer.echo(f"FAIL  [{failure.code}] {failure.message}")
    if report.ok:
        typer.echo("LEDGER VERIFIED")
        return
    typer.echo(f"LEDGER NOT VERIFIED ({len(report.failures)} failed checks)")
    raise typer.Exit(1)


@evidence_app.command("delete")
def delete_command(
    ctx: typer.Context,
    item_ids: Annotated[list[str], typer.Argument(help="Items to erase.")],
    reason: Annotated[str, typer.Option(help="Why (logged), e.g. 'victim request'.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    actor: ActorOption = None,
) -> None:
    """Erase items for good: destroy their keys, wipe their bytes, log tombstones."""
    typer.echo(
        "Warning: this destroys the item keys and bytes in Redress. Copies already exported "
        "in evidence packages cannot be recalled.",
        err=True,
    )
    if not yes and not typer.confirm("Erase these items?"):
        raise typer.Exit(1)
    with _service(_settings(ctx)) as service:
        for item_id in item_ids:
            entry = service.delete(item_id, _actor(actor), reason)
            typer.echo(f"deleted {item_id}: tombstone is ledger entry {entry.seq}")


@evidence_app.command("rotate-master-key")
def rotate_command(ctx: typer.Context, actor: ActorOption = None) -> None:
    """Re-wrap every item key under a new master key (see docs/evidence.md)."""
    settings = _settings(ctx)
    with _service(settings) as service:
        result = service.rotate_master_key(_actor(actor))
    # Only after the re-wrapped keys are committed may the old master key go.
    with _service(settings) as service:
        service.forget_old_master_keys()
    typer.echo(
        f"re-wrapped {result.rewrapped} item keys under master key {result.new_key_id}; "
        f"logged as ledger entry {result.entry_seq}"
    )


@evidence_app.command("checkpoint")
def checkpoint_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the note to this file.")
    ] = None,
) -> None:
    """Sign (if needed) and print a checkpoint of the ledger as it stands, for witnesses."""
    settings = _settings(ctx)
    with _service(settings) as service:
        size = service.ledger.checkpoint().checkpoint.size
    with _service(settings) as service:
        service.timestamp_checkpoint(size)
        note = service.ledger.signed_checkpoint(size).note
    if out:
        out.write_text(note, encoding="utf-8")
    typer.echo(note, nl=False)


@evidence_app.command("timestamp")
def timestamp_command(ctx: typer.Context) -> None:
    """Ask the configured TSA to timestamp every checkpoint that has no timestamp yet."""
    with _service(_settings(ctx)) as service:
        done = service.timestamp_pending()
    typer.echo(f"timestamped {done} checkpoints")


@evidence_app.command("recipient-key")
def recipient_key_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the PRIVATE key (0600).")],
) -> None:
    """Make an X25519 key pair for receiving encrypted packages; prints the public key."""
    from redress.evidence.crypto import new_recipient_key, write_private_file

    private_pem, public_pem = new_recipient_key()
    write_private_file(out, private_pem)
    public_path = out.with_name(out.name + ".pub")
    public_path.write_bytes(public_pem)
    typer.echo(f"private key: {out} (keep it secret)\npublic key:  {public_path}")
    typer.echo(public_pem.decode().rstrip())


def _bench_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    appends: Annotated[int, typer.Option(help="Ledger appends to time.", min=1000)] = 6000,
    proof_size: Annotated[
        int, typer.Option(help="Largest ledger for the proof figures (1000000 for 1M).", min=1000)
    ] = 100_000,
    items: Annotated[int, typer.Option(help="Items in the package.", min=1)] = 100,
    item_bytes: Annotated[int, typer.Option(help="Bytes per item.", min=1)] = 100_000,
) -> None:
    """Evidence ledger and package benchmarks (figures beside same-run anchors)."""
    from redress.evidence.bench import report

    report(json_output, appends, proof_size, items, item_bytes)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add this domain's commands to the root app and the bench group."""
    app.add_typer(evidence_app, name="evidence")
    bench.command("evidence")(_bench_command)
