"""`dcvae-train curves-table`: measured snapshots of runs (continued across folders) as a table with means."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from training.cli import app
from training.curve_table import parse_series, series_lines, window_table
from training.curves import CURVES_NAME, PROTOCOL_SETTINGS

SHA = "c" * 64


def _run(folder, measured):
    """A run folder whose curves.jsonl holds {iteration: metrics}, measured under the protocol's settings."""
    folder.mkdir(parents=True)
    (folder / "training_options.json").write_text(json.dumps({"batch_size": 8, "preset": "tiny"}))
    lines = [{"iteration": i, "images_seen": 8 * i, "preset": "tiny", "metrics": m, "deviations": [],
              "settings": PROTOCOL_SETTINGS, "classifier_sha256": SHA} for i, m in measured.items()]
    (folder / CURVES_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_a_run_continued_in_another_folder_reads_as_one_series_the_later_folder_winning(tmp_path):
    first = _run(tmp_path / "arm", {2: {"fd": 9.0}, 4: {"fd": 8.0, "agree": 0.5}})
    later = _run(tmp_path / "arm-continued", {4: {"fd": 7.5}, 6: {"fd": 6.0}})
    series = parse_series(f"{first}+{later}")
    assert series.label == "arm-continued" and series.runs == (first, later)
    lines = series_lines(series)
    assert [(line["iteration"], line["metrics"]["fd"]) for line in lines] == [(2, 9.0), (4, 7.5), (6, 6.0)]
    assert lines[1]["metrics"]["agree"] == 0.5  # a metric only the earlier folder measured is kept
    assert parse_series(f"mine={first}").label == "mine"
    odd = _run(tmp_path / "lr=1e-4+ema", {2: {"fd": 1.0}})  # a folder whose name holds = and +
    assert parse_series(str(odd)).runs == (odd,) and parse_series(f"x={odd}").runs == (odd,)
    for bad in ("", "label=", "label=+"):
        with pytest.raises(ValueError, match="names no run"):
            parse_series(bad)
    for bad in ("=", f"={first}", f" ={first}"):
        with pytest.raises(ValueError, match="empty label"):
            parse_series(bad)


def test_the_window_keeps_its_rows_and_each_column_is_averaged_over_its_own_snapshots():
    columns = {
        "a": [{"iteration": i, "metrics": {"fd": v, "agree": 0.9}} for i, v in ((62, 99.0), (64, 15.0), (65, 17.0),
                                                                                 (66, 16.0))],
        "b": [{"iteration": i, "metrics": {"fd": v}} for i, v in ((64, 13.0), (66, 12.0), (68, 11.0))],
    }
    table = window_table(columns, ["fd", "agree"], since=64, until=66).splitlines()
    assert table[0] == "| iteration | a: fd | a: agree | b: fd | b: agree |"
    assert [row.split(" | ")[0] for row in table[2:]] == ["| 64", "| 65", "| 66", "| mean (snapshots)",
                                                     "| mean (iterations all measured)"]
    assert table[3] == "| 65 | 17 | 0.9 | - | - |"  # b has no snapshot there
    assert table[-2] == "| mean (snapshots) | 16 (3) | 0.9 (3) | 12.5 (2) | - |"
    assert table[-1] == "| mean (iterations all measured) | 15.5 (2) | 0.9 (2) | 12.5 (2) | - |"  # 64 and 66
    whole = window_table(columns, ["fd"]).splitlines()
    assert whole[-2:] == ["| mean (snapshots) | 36.75 (4) | 12 (3) |",
                          "| mean (iterations all measured) | 15.5 (2) | 12.5 (2) |"]
    assert window_table({"a": columns["a"]}, ["fd"]).splitlines()[-1].startswith("| mean (snapshots)")  # one series


def test_an_empty_window_or_a_metric_nobody_measured_is_named():
    columns = {"a": [{"iteration": 4, "metrics": {"fd": 1.0}}]}
    with pytest.raises(ValueError, match="no measured snapshot of a from 10 to the end"):
        window_table(columns, ["fd"], since=10)
    with pytest.raises(ValueError, match="no series measured fid; measured: fd"):
        window_table(columns, ["fd", "fid"])


def test_the_command_prints_the_table_and_names_its_mistakes(tmp_path):
    arm = _run(tmp_path / "arm", {64: {"fd10k_classifier": 15.0}, 65: {"fd10k_classifier": 16.0}})
    arm_later = _run(tmp_path / "arm-later", {66: {"fd10k_classifier": 17.0}})
    vaegan = _run(tmp_path / "vaegan", {64: {"fd10k_classifier": 13.0}, 66: {"fd10k_classifier": 12.0}})
    runner = CliRunner()
    result = runner.invoke(app, ["curves-table", f"arm={arm}+{arm_later}", str(vaegan),
                                 "--metrics", "fd10k_classifier", "--since", "64"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == ["| mean (snapshots) | 16 (3) | 12.5 (2) |",
                                               "| mean (iterations all measured) | 16 (2) | 12.5 (2) |"]
    same = runner.invoke(app, ["curves-table", str(vaegan), str(vaegan)])
    assert "labelled alike" in str(same.exception)  # main() prints it as one line
    unmeasured = tmp_path / "unmeasured"
    unmeasured.mkdir()
    missing = runner.invoke(app, ["curves-table", str(unmeasured)])
    assert missing.exit_code != 0 and isinstance(missing.exception, FileNotFoundError)
    assert "dcvae-train curves" in str(missing.exception)
    with (vaegan / CURVES_NAME).open("a") as f:
        f.write('{"iteration": 68, "metr')  # a measurement writing its line
    broken = runner.invoke(app, ["curves-table", str(vaegan)])
    assert "curves.jsonl, line 3, is not JSON" in str(broken.exception)
