"""The SQLite write gate: one writer at a time across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text

from redress.store.db import SqliteWriteGate, make_engine, write_gate

HOLD = """
import sys
from pathlib import Path
from redress.store.db import SqliteWriteGate
gate = SqliteWriteGate(Path(sys.argv[1]))
with gate:
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_writer_waits_while_another_process_holds_the_gate(tmp_path: Path) -> None:
    lock = tmp_path / "db.sqlite-writes"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "held"
        gate = SqliteWriteGate(lock)
        entered = threading.Event()

        def write() -> None:
            with gate:
                entered.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not entered.wait(0.5)  # the other process still holds it
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert entered.wait(30)
        writer.join()
    gate.close()


def test_the_gate_is_reentrant_and_excludes_other_threads(tmp_path: Path) -> None:
    gate = SqliteWriteGate(tmp_path / "g")
    other_entered = threading.Event()

    def other() -> None:
        with gate:
            other_entered.set()

    with gate:
        with gate:  # a write inside a write of the same thread does not deadlock
            thread = threading.Thread(target=other)
            thread.start()
            assert not other_entered.wait(0.2)
        assert not other_entered.wait(0.2)  # still held by the outer block
    assert other_entered.wait(30)
    thread.join()
    gate.close()


def test_a_sqlite_file_gets_a_gate_beside_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    gate = write_gate(engine)
    assert isinstance(gate, SqliteWriteGate)
    assert gate.lock_path == tmp_path / "r.db-writes"
    with gate, engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    assert (tmp_path / "r.db-writes").exists()
    engine.dispose()
    memory = make_engine("sqlite://")  # one process only: a thread lock is enough
    assert not isinstance(write_gate(memory), SqliteWriteGate)
    memory.dispose()


@pytest.mark.postgres
def test_postgresql_needs_no_gate(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    gate = write_gate(engine)
    assert not isinstance(gate, SqliteWriteGate)
    with gate, engine.begin() as connection:  # row locks do the work
        assert connection.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()
