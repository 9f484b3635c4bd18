"""`redress worker`'s supervisor: a Celery worker that dies is started again, and a stop
request ends both, without Celery (the child here is a small stand-in process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# The stand-in for Celery's worker: it records each start, dies with status 1 on its
# first start (as Celery does after "Unrecoverable error"), and on later starts runs
# until SIGTERM, then exits 0 (a warm shutdown).
CHILD = textwrap.dedent(
    """
    import signal, sys, time
    from pathlib import Path
    starts = Path(sys.argv[1])
    starts.write_text(starts.read_text() + "start\\n" if starts.exists() else "start\\n")
    if starts.read_text().count("start") == 1:
        sys.exit(1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(0.05)
    """
)

SUPERVISOR = textwrap.dedent(
    """
    import sys
    from redress.pipeline.worker import RestartPolicy, supervise_worker
    policy = RestartPolicy(first_delay=0.1, max_delay=0.2, healthy_after=60)
    sys.exit(supervise_worker([sys.executable, sys.argv[1], sys.argv[2]], policy))
    """
)


def _wait_for(condition: object, what: str) -> None:
    assert callable(condition)
    give_up = time.monotonic() + 60  # a guard against hanging, not a speed target
    while not condition():
        assert time.monotonic() < give_up, what
        time.sleep(0.05)


def test_a_dead_worker_is_started_again_and_a_stop_ends_both(tmp_path: Path) -> None:
    child, starts = tmp_path / "child.py", tmp_path / "starts.txt"
    child.write_text(CHILD)
    log = tmp_path / "supervisor.log"
    with log.open("w") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR, str(child), str(starts)],
            stderr=out,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
    try:
        _wait_for(lambda: starts.exists() and starts.read_text().count("start") == 2, "restart")
        time.sleep(0.3)  # the second worker is up and waiting
        assert supervisor.poll() is None, "the supervisor stays while its worker runs"
        supervisor.send_signal(signal.SIGTERM)
        status = supervisor.wait(timeout=60)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
    assert status == 0  # the worker's warm shutdown
    assert starts.read_text().count("start") == 2  # not started a third time
    assert "exited with status 1; starting another" in log.read_text()
