"""The dataset-scale encoding benchmark keeps every run it makes and summarizes them truthfully."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_encoding_benchmark_keeps_every_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.encoding", "--files", "20", "--rounds", "1", "--runs", "2",
         "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads((tmp_path / "encoding.json").read_text())
    runs, summary = data["runs"], data["summary"]
    assert len(runs) == summary["runs"] == 2
    shares = [run["rows"][-1]["share_after_startup"] for run in runs]
    for run in runs:
        assert [row["files"] for row in run["rows"]] == [2, 20]
        assert run["date_utc"].endswith("UTC") and run["model_only_images_per_s"] > 0
        row = run["rows"][-1]
        assert row["share_of_model"] == row["images_per_s"] / run["model_only_images_per_s"]
    spread = summary["share_after_startup"]
    assert (spread["min"], spread["max"]) == (min(shares), max(shares))
    assert spread["median"] == sum(shares) / 2
    assert summary["runs_meeting_target"] == sum(share >= 0.70 for share in shares)
    assert "run 2/2" in result.stdout and "of 2)" in result.stdout


def test_encoding_benchmark_refuses_too_few_files(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.encoding", "--files", "5", "--results-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "--files must be at least 20" in result.stderr
    assert not (tmp_path / "encoding.json").exists()
