"""The per-run multiprocess directory (worker.metrics.prepare_multiprocess_dir), in real child processes with a
private TMPDIR: made before the library is imported, removed on a normal exit, and swept at the next start when
its owner died by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PREPARE = (
    "import os, sys\n"
    "from worker.metrics import prepare_multiprocess_dir, webhook\n"
    "path = prepare_multiprocess_dir()\n"
    "class R: status_code = 200\n"
    "webhook('twilio_sms', R())\n"
    "print(path, flush=True)\n"
    "if sys.argv[1] == 'hang': import time; time.sleep(60)\n"
)


def run(tmp: Path, mode: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {"TMPDIR": str(tmp)}
    return subprocess.Popen([sys.executable, "-c", PREPARE, mode], env=env, stdout=subprocess.PIPE, text=True)


def test_a_run_gets_its_own_directory_and_removes_it_on_exit(tmp_path: Path) -> None:
    proc = run(tmp_path, "exit")
    out, _ = proc.communicate(timeout=60)
    path = Path(out.strip())
    assert proc.returncode == 0
    assert path.parent == tmp_path
    assert path.name.startswith(f"msgworker-metrics-{proc.pid}-")
    assert not path.exists()


def test_a_directory_left_by_a_killed_run_is_swept_by_the_next(tmp_path: Path) -> None:
    killed = run(tmp_path, "hang")
    assert killed.stdout is not None
    left = Path(killed.stdout.readline().strip())
    assert any(f.name.startswith("counter_") for f in left.iterdir())  # it counted into files
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    time.sleep(0.1)
    assert left.exists()
    survivor = run(tmp_path, "hang")  # a live owner's directory is kept
    assert survivor.stdout is not None
    kept = Path(survivor.stdout.readline().strip())
    try:
        nxt = run(tmp_path, "exit")
        nxt.communicate(timeout=60)
        assert not left.exists()
        assert kept.exists()
    finally:
        survivor.kill()
        survivor.wait(timeout=10)


def test_it_refuses_once_the_library_chose_in_process_values(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | {"TMPDIR": str(tmp_path)}
    code = "import prometheus_client\nfrom worker.metrics import prepare_multiprocess_dir\nprepare_multiprocess_dir()\n"
    run_ = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert run_.returncode != 0
    assert "before prometheus_client is imported" in run_.stderr
