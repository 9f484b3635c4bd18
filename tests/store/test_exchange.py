"""Exchange formats and the checkpointed importer, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import random
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from redress.signals.types import SignalKind
from redress.store.errors import ImportProblem, ImportRejectedError
from redress.store.exchange import (
    BankImporter,
    ExchangeFormat,
    ParsedRecord,
    RecordBlock,
    export_bank,
    file_digest,
    parse_hma_csv,
    parse_hma_csv_blocks,
    parse_stopncii,
    parse_vpdq_file,
    parse_vpdq_lines,
    vpdq_text,
)
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.models import BankEntry, ImportCheckpoint, IndexChange
from redress.store.service import BankService, CaseService
from redress.store.store import SqlBankStore
from store.store_hashes import random_pdq


def record(
    kind: str, value: str, status: str = "Active", cases: object = None
) -> dict[str, object]:
    return {
        "lastModtimestamp": 1700000000,
        "signalType": kind,
        "hashValue": value,
        "hashStatus": status,
        "caseNumbers": {} if cases is None else cases,
        "CSPFeedbacks": [],
    }


def envelope(records: list[dict[str, object]]) -> str:
    body = {
        "count": len(records),
        "nextPageToken": None,
        "nextSetTimestamp": 1700000001,
        "hasMoreRecords": False,
        "hashRecords": records,
    }
    return json.dumps(body, indent=2)


PDQ_A = "f" * 64
PDQ_B = "0" * 63 + "1"
MD5_A = "d41d8cd98f00b204e9800998ecf8427e"


def test_stopncii_statuses_follow_the_cases_not_meta_s_bug() -> None:
    text = envelope(
        [
            record("ImagePDQ", PDQ_A),
            record("ImagePDQ", PDQ_B, "Active", {"C1": "Withdrawn", "C2": "Deleted"}),
            record("VideoMD5", MD5_A, "Withdrawn"),
            record("ImagePDQ", "1" * 64, "Active", {"C3": "Withdrawn", "C4": "Active"}),
        ]
    )
    parsed = [p for p in parse_stopncii(io.StringIO(text)) if isinstance(p, ParsedRecord)]
    assert [(p.kind, p.value.hex(), p.delete) for p in parsed] == [
        (SignalKind.PDQ, PDQ_A, False),
        (SignalKind.PDQ, PDQ_B, True),
        (SignalKind.MD5, MD5_A, True),
        (SignalKind.PDQ, "1" * 64, False),
    ]


def test_stopncii_bad_rows_are_reported_with_line_numbers() -> None:
    text = envelope(
        [
            record("ImagePDQ", PDQ_A),
            record("VideoTMK", "ab" * 10),
            record("ImagePDQ", "zz" + "f" * 62),
            record("Banana", PDQ_A),
        ]
    )
    problems = [p for p in parse_stopncii(io.StringIO(text)) if isinstance(p, ImportProblem)]
    lines = text.splitlines()
    assert [p.code for p in problems] == ["unknown_signal_type", "bad_hash", "unknown_signal_type"]
    for problem in problems:
        # Each reported line is where that record's object starts.
        assert lines[problem.line - 1].strip() == "{"
    assert "VideoTMK" in problems[0].message


def test_stopncii_json_lines_and_truncated_documents() -> None:
    jsonl = "\n".join(json.dumps(record("ImagePDQ", h)) for h in (PDQ_A, PDQ_B)) + "\n{oops\n"
    items = list(parse_stopncii(io.StringIO(jsonl)))
    assert [type(i).__name__ for i in items] == ["ParsedRecord", "ParsedRecord", "ImportProblem"]
    assert isinstance(items[2], ImportProblem)
    assert items[2].line == 3
    truncated = envelope([record("ImagePDQ", PDQ_A), record("ImagePDQ", PDQ_B)])[:-40]
    items = list(parse_stopncii(io.StringIO(truncated)))
    assert isinstance(items[0], ParsedRecord)
    assert isinstance(items[-1], ImportProblem)
    assert items[-1].code == "bad_json"


def test_hma_csv_rows_header_and_bad_hex() -> None:
    text = (
        "hash,id,time,tags\n"
        f"{PDQ_A},123,2020-07-31T18:47:52+0000,media_type_photo disputed\n"
        f"{MD5_A},124,2020-07-31T18:47:52+0000,media_type_video\n"
        "xyz,125,,\n"
        f"{PDQ_A[:-1]}g,126,,\n"
    )
    items = list(parse_hma_csv(io.StringIO(text)))
    records = [i for i in items if isinstance(i, ParsedRecord)]
    problems = [i for i in items if isinstance(i, ImportProblem)]
    assert [(r.kind, r.external_id) for r in records] == [
        (SignalKind.PDQ, "123"),
        (SignalKind.MD5, "124"),
    ]
    assert json.loads(records[0].meta_json or "{}")["tags"] == ["media_type_photo", "disputed"]
    assert [(p.line, p.code) for p in problems] == [(4, "bad_hash"), (5, "bad_hash")]


def test_hma_csv_blocks_give_the_same_records_and_problems_as_rows() -> None:
    upper = random.Random(5).randbytes(32).hex().upper()
    text = (
        "hash,id,time,tags\n"
        f"{PDQ_A},1,2020-07-31T18:47:52+0000,a b\n"
        "\n"
        "# a comment\n"
        f"{MD5_A},2,,\n"
        "xyz,3,,\n"
        f"{upper},4,2020-07-31T18:47:52+0000,a b\n"
        f'"{PDQ_B}","5, quoted",,"x y"\n'
        f"{PDQ_A},6\n"
        f"{PDQ_A[:-1]}g,7,,\n"
        f"{PDQ_B}\n"
    )
    rows = list(parse_hma_csv(io.StringIO(text)))
    for size in (1, 3, 100):
        flat: list[object] = []
        for item in parse_hma_csv_blocks(io.StringIO(text), block_rows=size):
            if isinstance(item, RecordBlock):
                flat.extend(
                    ParsedRecord(line, item.kind, bytes.fromhex(h), ext, meta)
                    for line, h, ext, meta in zip(
                        item.lines,
                        item.hex_values,
                        item.external_ids,
                        item.metadata_json,
                        strict=True,
                    )
                )
            else:
                flat.append(item)
        # Within a block problems come first; the set of records and problems is the same.
        assert sorted(flat, key=lambda i: i.line) == rows  # type: ignore[attr-defined]
    values = [r.value.hex() for r in rows if isinstance(r, ParsedRecord)]
    assert upper.lower() in values
    # A quoted line break never splits a record, whatever the block size.
    broken = f'{PDQ_A},"an id\nover two lines",,\n{PDQ_B},2,,\n'
    for size in (1, 2):
        blocks = list(parse_hma_csv_blocks(io.StringIO(broken), block_rows=size))
        ids = [e for b in blocks if isinstance(b, RecordBlock) for e in b.external_ids]
        assert ids == ["an id\nover two lines", "2"]
    assert [p.line for p in rows if isinstance(p, ImportProblem)] == [6, 10]


def test_reimport_collapses_duplicates_and_revives_removed_entries(
    engine: Engine, tmp_path: Path
) -> None:
    make_bank(engine)
    first = tmp_path / "first.csv"
    old = sorted(big_csv(first, 300, seed=3))
    assert BankImporter(engine, chunk_size=100).run("x", first, ExchangeFormat.HMA_CSV).added == 300
    with Session(engine) as s:
        store = SqlBankStore(s)
        bank = store.get_bank("x").id
        gone = [store.find_entries(bank, SignalKind.PDQ, bytes.fromhex(v))[0].id for v in old[:50]]
        store.remove_entries(gone)
        s.commit()
    # The second list repeats 100 active hashes and the 50 removed ones, and brings 100 new.
    second = tmp_path / "second.csv"
    new = [random.Random(1000 + i).randbytes(32).hex() for i in range(100)]
    with second.open("w") as f:
        for i, value in enumerate(old[:150] + new):
            f.write(f"{value},{i},,\n")
    report = BankImporter(engine, chunk_size=100).run("x", second, ExchangeFormat.HMA_CSV)
    assert (report.records, report.added, report.duplicates) == (250, 150, 100)
    assert active_values(engine) == set(old) | set(new)
    with Session(engine) as s:
        rows = s.scalars(select(BankEntry.value)).all()
    assert len(rows) == len(set(rows)) == 400


def test_import_resumes_inside_a_parsed_block(engine: Engine, tmp_path: Path) -> None:
    make_bank(engine)
    path = tmp_path / "list.csv"
    values = [random.Random(i).randbytes(32).hex() for i in range(20)]
    path.write_text("".join(f"{v},{i},,\n" for i, v in enumerate(values)), encoding="ascii")
    # An interrupted run (with another chunk size) had committed the first 7 records.
    with Session(engine) as s:
        bank = SqlBankStore(s).get_bank("x").id
        s.add(
            ImportCheckpoint(
                bank_id=bank,
                file_digest=file_digest(path),
                format="hma-csv",
                position=7,
                status="running",
                counters={"records": 7},
            )
        )
        s.commit()
    report = BankImporter(engine, chunk_size=5).run("x", path, ExchangeFormat.HMA_CSV)
    assert (report.resumed_at, report.records, report.added) == (7, 20, 13)
    assert active_values(engine) == set(values[7:])


def test_vpdq_text_matches_meta_reference_files(shared_data: Path) -> None:
    path = shared_data / "vpdq" / "hashes" / "chair-19-sd-bar.txt"
    text = path.read_text(encoding="utf-8")
    frames = [i for i in parse_vpdq_lines(io.StringIO(text)) if isinstance(i, tuple)]
    assert len(frames) == len(text.strip().splitlines())
    rewritten = vpdq_text((f.frame, f.pdq, f.ts) for _line, f in frames)
    for ours, theirs in zip(rewritten.splitlines(), text.strip().splitlines(), strict=True):
        a, b = ours.split(","), theirs.split(",")
        assert a[:3] == b[:3]
        assert float(a[3]) == pytest.approx(float(b[3]), abs=1e-3)
    bad = list(parse_vpdq_file(io.StringIO("0,100,abc,0.0\n1,100\n")))
    assert [(p.line, p.code) for p in bad if isinstance(p, ImportProblem)] == [
        (1, "bad_hash"),
        (2, "bad_vpdq_line"),
        (1, "empty_vpdq"),
    ]


def make_bank(engine: Engine, name: str = "x") -> None:
    with Session(engine) as s:
        BankService(s).create(name, BankPurpose.EXTERNAL_EXCHANGE)
        s.commit()


def active_values(engine: Engine, bank: str = "x") -> set[str]:
    with Session(engine) as s:
        store = SqlBankStore(s)
        return {e.value.hex() for e in store.iter_entries(store.get_bank(bank).id)}


def test_import_skips_bad_rows_or_rejects_the_whole_file(engine: Engine, tmp_path: Path) -> None:
    make_bank(engine)
    path = tmp_path / "list.csv"
    path.write_text(f"{PDQ_A},1,,\nnot-a-hash,2,,\n{PDQ_B},3,,\n{PDQ_A},4,,\n", encoding="utf-8")
    with pytest.raises(ImportRejectedError) as rejected:
        BankImporter(engine).run("x", path, ExchangeFormat.HMA_CSV, strict=True)
    assert [(p.line, p.code) for p in rejected.value.problems] == [(2, "bad_hash")]
    assert "line 2" in rejected.value.message
    assert active_values(engine) == set()
    report = BankImporter(engine).run("x", path, ExchangeFormat.HMA_CSV)
    assert (report.records, report.added, report.duplicates, report.problem_count) == (3, 2, 1, 1)
    assert report.problems[0].line == 2
    assert active_values(engine) == {PDQ_A, PDQ_B}


def test_stopncii_withdrawal_removes_previously_imported_hashes(
    engine: Engine, tmp_path: Path
) -> None:
    make_bank(engine)
    first = tmp_path / "page1.json"
    first.write_text(
        envelope(
            [
                record("ImagePDQ", PDQ_A, cases={"C1": "Active"}),
                record("ImagePDQ", PDQ_B),
                record("VideoMD5", MD5_A),
            ]
        )
    )
    BankImporter(engine).run("x", first, ExchangeFormat.STOPNCII)
    assert active_values(engine) == {PDQ_A, PDQ_B, MD5_A}
    second = tmp_path / "page2.json"
    second.write_text(
        envelope(
            [
                record("ImagePDQ", PDQ_A, cases={"C1": "Withdrawn"}),
                record("VideoMD5", MD5_A, "Deleted"),
            ]
        )
    )
    report = BankImporter(engine).run("x", second, ExchangeFormat.STOPNCII)
    assert report.removed == 2
    assert active_values(engine) == {PDQ_B}
    with Session(engine) as s:
        removed = s.scalars(select(BankEntry).where(BankEntry.removed_at.is_not(None))).all()
    assert len(removed) == 2  # recorded, not forgotten


def test_exports_round_trip(engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(3)
    hashes = [random_pdq(rng) for _ in range(5)]
    with Session(engine) as s:
        created = CaseService(s).create([EntryIn(SignalKind.PDQ, h.bits) for h in hashes[:2]])
        BankService(s).add("victim-cases", [EntryIn(SignalKind.MD5, bytes.fromhex(MD5_A))])
        s.commit()
    for fmt in (ExchangeFormat.STOPNCII, ExchangeFormat.HMA_CSV):
        out = io.StringIO()
        with Session(engine) as s:
            report = export_bank(s, "victim-cases", fmt, out)
        assert report.written == 3
        path = tmp_path / f"export.{fmt.value}"
        path.write_text(out.getvalue(), encoding="utf-8")
        make_bank(engine, f"copy-{fmt.value}")
        BankImporter(engine).run(f"copy-{fmt.value}", path, fmt)
        assert active_values(engine, f"copy-{fmt.value}") == active_values(engine, "victim-cases")
    document = json.loads((tmp_path / "export.stopncii").read_text())
    assert document["count"] == 3
    numbers = [r["caseNumbers"] for r in document["hashRecords"] if r["caseNumbers"]]
    assert numbers == [{created.case.case_number: "Received"}] * 2


def test_vpdq_export_writes_meta_text(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    make_bank(engine)
    source = shared_data / "vpdq" / "hashes" / "pattern-sd-with-small-logo-bar.txt"
    BankImporter(engine).run("x", source, ExchangeFormat.VPDQ)
    with Session(engine) as s:
        report = export_bank(s, "x", ExchangeFormat.VPDQ, tmp_path / "out")
    assert report.written == 1
    [written] = list((tmp_path / "out").iterdir())
    ours = [line.split(",")[:3] for line in written.read_text().splitlines()]
    theirs = [line.split(",")[:3] for line in source.read_text().strip().splitlines()]
    assert ours == theirs


def big_csv(path: Path, count: int, seed: int, dup_every: int = 0) -> set[str]:
    rng = random.Random(seed)
    values: list[str] = []
    with path.open("w", encoding="ascii") as f:
        for i in range(count):
            fresh = not values or not dup_every or i % dup_every
            value = rng.randbytes(32).hex() if fresh else values[-1]
            values.append(value)
            f.write(f"{value},{i},,\n")
    return set(values)


def test_two_concurrent_importers_neither_lose_nor_duplicate(
    engine: Engine, tmp_path: Path
) -> None:
    make_bank(engine)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    expected = big_csv(a, 6000, seed=1)
    # The second file shares half its hashes with the first.
    shared = sorted(expected)[:3000]
    with b.open("w") as f:
        for i, value in enumerate(
            shared + [random.Random(i).randbytes(32).hex() for i in range(3000)]
        ):
            f.write(f"{value},{i},,\n")
            expected.add(value)
    errors: list[BaseException] = []

    def run(path: Path) -> None:
        try:
            BankImporter(engine, chunk_size=500).run("x", path, ExchangeFormat.HMA_CSV)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(p,)) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Session(engine) as s:
        rows = s.scalars(select(BankEntry.value)).all()
        logged = s.execute(
            select(IndexChange.entry_id, IndexChange.entry_id_end).where(IndexChange.op == "add")
        ).all()
    assert len(rows) == len(set(rows)) == len(expected)
    assert {v.hex() for v in rows} == expected
    assert sum(end - start + 1 for start, end in logged) == len(expected)


def test_checkpoint_is_committed_with_each_chunk(engine: Engine, tmp_path: Path) -> None:
    make_bank(engine)
    path = tmp_path / "big.csv"
    expected = big_csv(path, 2500, seed=2, dup_every=10)
    report = BankImporter(engine, chunk_size=1000).run("x", path, ExchangeFormat.HMA_CSV)
    assert report.added == len(expected)
    with Session(engine) as s:
        checkpoint = s.scalars(select(ImportCheckpoint)).one()
        entries = s.scalar(select(func.count()).select_from(BankEntry))
    assert (checkpoint.status, checkpoint.position) == ("done", 2500)
    assert entries == len(expected)
