"""reports/reproduce.sh: a target whose training piece ends early stops there instead of releasing a partial run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "reports" / "reproduce.sh"
pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="run from an sdist: reports/ lives in the repository only")


def test_a_piece_that_ends_early_stops_the_target_and_the_next_run_goes_on(tmp_path):
    piece = re.search(r"^piece\(\) \{.*?^\}$", SCRIPT.read_text(), re.S | re.M).group(0)
    train = (f'"{sys.executable}" -m training train --preset tiny --run-dir "{tmp_path / "run"}" --no-progress '
             "--set total_iterations=2 --set log_every=1")
    script = (f"set -euo pipefail\n{piece}\nTARGET=demo\n"
              f"piece 2 {train} --stop-after 1\necho AFTER-THE-PIECE\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(SCRIPT.parents[1])}
    early = subprocess.run(["bash", "-c", script], cwd=SCRIPT.parents[1], env=env, capture_output=True, text=True,
                           timeout=600)
    assert early.returncode == 75, early.stderr[-2000:]
    assert "AFTER-THE-PIECE" not in early.stdout  # the steps after it (release, evaluation) never ran
    assert "stopped before iteration 2" in early.stderr and "reproduce.sh demo' again" in early.stderr
    assert '"iteration": 1' in early.stdout  # the command's summary is passed through
    done = subprocess.run(["bash", "-c", script.replace(" --stop-after 1", "")], cwd=SCRIPT.parents[1], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "AFTER-THE-PIECE" in done.stdout and '"iteration": 2' in done.stdout
