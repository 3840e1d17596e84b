"""`dcvae-train compare`: evaluation reports side by side, refusing reports that are not comparable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from training.cli import UserError, app
from training.compare import ReportError, compare_reports
from training.evaluate import REPORT_FORMAT


def _report(tmp_path: Path, name: str, metrics: dict, dataset: str = "fashion-mnist", **details) -> Path:
    path = tmp_path / f"{name}.json"
    body = {
        "format": REPORT_FORMAT,
        "model": f"runs/{name}",
        "dataset": dataset,
        "metrics": metrics,
        "details": {"model_config": {"preset": name}, "iteration": 4000, "deviations": [], **details},
    }
    path.write_text(json.dumps(body))
    return path


def test_one_row_per_report_in_the_order_given(tmp_path: Path) -> None:
    a = _report(tmp_path, "dcvae", {"recon_mse_test": 0.046305, "fd10k_classifier": 398.909})
    b = _report(tmp_path, "vae", {"recon_mse_test": 0.0301, "probe_linear_test": 0.8})
    table = compare_reports([a, b]).splitlines()
    assert table[0].startswith("| checkpoint | iteration | `recon_mse_test` (lower is better)")
    assert "`probe_linear_test` (higher is better)" in table[0]
    assert table[2] == "| `dcvae` | 4000 | 0.0463 | 398.9 | - |"
    assert table[3] == "| `vae` | 4000 | 0.0301 | - | 0.8000 |"


def test_chosen_metrics_only(tmp_path: Path) -> None:
    a = _report(tmp_path, "dcvae", {"recon_mse_test": 0.05, "fd10k_classifier": 398.9})
    table = compare_reports([a], ["fd10k_classifier"])
    assert "recon_mse_test" not in table and "| 398.9 |" in table


def test_reports_on_different_datasets_or_with_deviations_are_refused(tmp_path: Path) -> None:
    a = _report(tmp_path, "a", {"recon_mse_test": 0.05})
    b = _report(tmp_path, "b", {"recon_mse_test": 0.05}, dataset="mnist5k")
    c = _report(tmp_path, "c", {"recon_mse_test": 0.05}, deviations=["test split limited to 100 images"])
    with pytest.raises(ReportError, match="different datasets"):
        compare_reports([a, b])
    with pytest.raises(ReportError, match="limited to 100 images"):
        compare_reports([a, c])
    assert compare_reports([a, b, c], allow_mixed=True).count("\n") == 4


def test_classifier_metrics_from_different_classifiers_are_refused(tmp_path: Path) -> None:
    def judged_by(sha: str) -> dict:
        return {"classifier": {"feature_network": "FD-classifier", "weights_sha256": sha}}

    a = _report(tmp_path, "a", {"recon_class_agreement_test": 0.91, "recon_mse_test": 0.017}, **judged_by("a" * 64))
    b = _report(tmp_path, "b", {"recon_class_agreement_test": 0.89, "recon_mse_test": 0.017}, **judged_by("b" * 64))
    same = _report(tmp_path, "same", {"recon_class_agreement_test": 0.90}, **judged_by("a" * 64))
    unrecorded = _report(tmp_path, "old", {"fd10k_classifier": 12.0})
    with pytest.raises(ReportError, match=f"different classifiers.*a.json: {'a' * 12}.*b.json: {'b' * 12}"):
        compare_reports([a, b])
    with pytest.raises(ReportError, match="different classifiers"):
        compare_reports([a, b], ["edit_success_boot", "recon_class_agreement_test"])
    # pixel metrics do not depend on the classifier; one classifier, or none recorded, compares
    assert "| 0.0170 |" in compare_reports([a, b], ["recon_mse_test"])
    assert compare_reports([a, same, unrecorded]).count("\n") == 4
    assert compare_reports([a, b], allow_mixed=True).count("\n") == 3
    result = CliRunner().invoke(app, ["compare", str(a), str(b)])
    assert isinstance(result.exception, UserError) and "--allow-mixed" in str(result.exception)
    result = CliRunner().invoke(app, ["compare", str(a), str(b), "--allow-mixed"])
    assert result.exit_code == 0 and "| `b` | 4000 | 0.8900 |" in result.output


def test_reports_sharing_the_same_deviation_compare_and_say_so(tmp_path: Path) -> None:
    limited = ["test split limited to a fixed subset of 2000 images"]
    a = _report(tmp_path, "a", {"rfd_lite0": 12.5}, deviations=limited)
    b = _report(tmp_path, "b", {"rfd_lite0": 20.0}, deviations=limited)
    c = _report(tmp_path, "c", {"rfd_lite0": 9.0}, deviations=[*limited, "samples drawn from the fitted prior"])
    table = compare_reports([a, b])
    assert table.splitlines()[-1].endswith("deviates from the protocol in the same way: " + limited[0] + ".")
    with pytest.raises(ReportError, match="different deviations"):
        compare_reports([a, b, c])


def test_cli_names_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.json"
    bogus.write_text('{"hello": 1}')
    result = CliRunner().invoke(app, ["compare", str(bogus)])
    assert isinstance(result.exception, UserError)  # main() prints it as one line and exits 1
    assert "notes.json" in str(result.exception) and "not a `dcvae-train eval` report" in str(result.exception)
    good = _report(tmp_path, "dcvae", {"recon_mse_test": 0.05})
    result = CliRunner().invoke(app, ["compare", str(good)])
    assert result.exit_code == 0 and "| `dcvae` | 4000 | 0.0500 |" in result.output


def test_inception_fids_are_marked_lower_is_better(tmp_path: Path) -> None:
    a = _report(tmp_path, "dcvae", {"fid50k_inception": 17.9, "rfid_inception": 8.1, "recon_psnr_test": 20.0})
    header = compare_reports([a]).splitlines()[0]
    assert "`fid50k_inception` (lower is better)" in header
    assert "`rfid_inception` (lower is better)" in header
    assert "`recon_psnr_test` (higher is better)" in header
