"""SIGTERM (what `kill`, a job scheduler or a timeout sends) stops a command cleanly: exit status 143 with one
line, no unfinished artifact folder, and no face-model worker process left running. (kill -9: test_checkpoint.py.)"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

COMMAND = """
import os, sys, time
from latentatlas import cli
from latentatlas.evaluation import workers
from latentatlas.io import atomic_folder

def hang(args):
    pool = workers.worker_pool(2)  # the instruments' worker pool, as an evaluation with dlib starts it
    pids = set()
    while len(pids) < 2:
        pids |= {future.result() for future in [pool.submit(os.getpid) for _ in range(8)]}
    with atomic_folder(sys.argv[1], kind="test") as tmp:
        (tmp / "half.txt").write_text("written before the signal")
        print(" ".join(map(str, sorted(pids))), flush=True)
        time.sleep(120)

cli.COMMANDS.append(("hang", "start the workers, open an artifact folder and wait", lambda parser: None, hang))
if __name__ == "__main__":
    sys.exit(cli.main(["hang"]))
"""


def _alive(pid: int) -> bool:
    """Running (an exited process that no one has reaped yet, a zombie, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="the workers' forkserver and the signal are Linux's")
def test_sigterm_stops_the_workers_and_leaves_no_half_written_artifact(tmp_path: Path) -> None:
    script, artifact = tmp_path / "hang.py", tmp_path / "artifact"
    script.write_text(textwrap.dedent(COMMAND))
    process = subprocess.Popen(
        [sys.executable, str(script), str(artifact)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        workers = [int(pid) for pid in process.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)  # before the fix: the workers held stderr open for good
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert err.strip().splitlines()[-1] == "latentatlas: stopped by SIGTERM" and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
    assert not artifact.exists() and [p.name for p in tmp_path.iterdir()] == ["hang.py"]  # no temporary left


def test_main_restores_the_callers_sigterm_handler(tiny_run, capsys) -> None:
    from latentatlas.cli import main

    before = signal.getsignal(signal.SIGTERM)
    assert main(["sample", str(tiny_run.path), "--sampler", "gaussian", "-n", "0"]) == 2  # refused inside the command
    assert signal.getsignal(signal.SIGTERM) is before
    capsys.readouterr()
