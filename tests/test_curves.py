"""Curves of metrics against images seen, from a run's network snapshots."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from training.curves import (
    CURVES_NAME,
    UNRECORDED,
    classifier_mismatch,
    evaluate_snapshots,
    line_settings,
    plot_curves,
    snapshot_folders,
)
from training.presets import get_preset
from training.training_loop import training_loop

pytestmark = pytest.mark.usefixtures("one_thread")


def test_snapshots_are_evaluated_once_each_and_drawn(tmp_path):
    metrics_cache = tmp_path / "cache"  # recon_mse_test needs no classifier
    options = get_preset("tiny").override(total_iterations=4, network_snapshot_every=2, log_every=2,
                                          snapshot_every=100, checkpoint_every=100)
    run = tmp_path / "run"
    training_loop(options, run, progress=False)
    assert [i for i, _ in snapshot_folders(run)] == [2, 4]
    lines = evaluate_snapshots(run, ["recon_mse_test"], test_limit=64, cache_dir=metrics_cache, show_progress=False)
    assert [(line["iteration"], line["images_seen"]) for line in lines] == [(2, 16), (4, 32)]
    assert all(0 < line["metrics"]["recon_mse_test"] < 1 for line in lines)
    assert all(line["classifier_sha256"] is None and line["classifiers"] == [] for line in lines)  # none used
    again = evaluate_snapshots(run, ["recon_mse_test"], test_limit=64, cache_dir=metrics_cache, show_progress=False)
    assert len((run / CURVES_NAME).read_text().splitlines()) == 2 and again == lines  # nothing re-evaluated
    assert json.loads((run / CURVES_NAME).read_text().splitlines()[0])["preset"] == "tiny"
    more = evaluate_snapshots(run, ["recon_mse_test", "recon_psnr_test"], test_limit=64, cache_dir=metrics_cache,
                              show_progress=False)  # a metric asked for later is added to every snapshot
    assert [sorted(line["metrics"]) for line in more] == [["recon_mse_test", "recon_psnr_test"]] * 2
    # another test subset is another protocol: measured again, and only its own lines come back
    other = evaluate_snapshots(run, ["recon_mse_test"], test_limit=32, cache_dir=metrics_cache, show_progress=False)
    assert [line["settings"]["test_limit"] for line in other] == [32, 32]
    assert [sorted(line["metrics"]) for line in other] == [["recon_mse_test"]] * 2
    values = [line["metrics"]["recon_mse_test"] for line in other]
    assert values != [line["metrics"]["recon_mse_test"] for line in lines]
    assert len((run / CURVES_NAME).read_text().splitlines()) == 6
    back = evaluate_snapshots(run, ["recon_mse_test"], test_limit=64, cache_dir=metrics_cache, show_progress=False)
    assert back == more and len((run / CURVES_NAME).read_text().splitlines()) == 6
    # a run of two processes shows twice the images an iteration, its earlier lines included
    from training.run_state import write_checkpoint
    from training.training_loop import CHECKPOINT_NAME, load_checkpoint

    state = load_checkpoint(run / CHECKPOINT_NAME)
    write_checkpoint({**state, "rng": [state["rng"][0], state["rng"][0]]}, run / CHECKPOINT_NAME)
    two = evaluate_snapshots(run, ["recon_mse_test"], test_limit=64, cache_dir=metrics_cache, show_progress=False)
    assert [line["images_seen"] for line in two] == [32, 64]
    figure = plot_curves({"tiny": lines}, ["recon_mse_test"], tmp_path / "curves.png")
    with Image.open(figure) as image:
        assert image.size[0] > 300


def _write_curves(run, lines):
    run.mkdir(parents=True)
    (run / "training_options.json").write_text(json.dumps({"batch_size": 8, "preset": "tiny"}))
    (run / CURVES_NAME).write_text("".join(json.dumps(line) + "\n" for line in lines))


def test_lines_measured_with_different_classifiers_are_named(tmp_path):
    old, new = "a" * 64, "b" * 64
    line = {"images_seen": 16, "preset": "tiny", "deviations": []}
    _write_curves(tmp_path / "dcvae", [
        {**line, "iteration": 2, "metrics": {"rfd_classifier": 9.0}},  # written before lines named their classifier
        {**line, "iteration": 4, "metrics": {"rfd_classifier": 5.0}, "classifier_sha256": old},
    ])
    _write_curves(tmp_path / "vae", [
        {**line, "iteration": 2, "metrics": {"rfd_classifier": 7.0}, "classifier_sha256": new},
        {**line, "iteration": 2, "metrics": {"recon_mse_test": 0.1}, "classifier_sha256": None},  # merged in
        {**line, "iteration": 4, "metrics": {"recon_mse_test": 0.2}},  # old, but no classifier-based metric
    ])
    table = {name: evaluate_snapshots(tmp_path / name, ["rfd_classifier"]) for name in ("dcvae", "vae")}
    assert [line["classifiers"] for line in table["dcvae"]] == [[UNRECORDED], [old]]
    assert table["vae"][0]["classifiers"] == [new] and table["vae"][0]["metrics"] == {
        "rfd_classifier": 7.0, "recon_mse_test": 0.1}
    assert table["vae"][1]["classifiers"] == []
    message = classifier_mismatch(table)
    assert message is not None
    assert "dcvae@2" in message and "dcvae@4" in message and "vae@2" in message
    assert UNRECORDED in message and old[:12] in message and new[:12] in message
    assert classifier_mismatch({"vae": table["vae"]}) is None
    assert classifier_mismatch({"dcvae": table["dcvae"][1:], "vae": table["vae"]}) is not None


def test_lines_written_before_settings_were_recorded_read_them_from_their_deviations():
    assert line_settings({"deviations": []}) == {"test_limit": None, "train_limit": None, "sample_prior": "standard"}
    old = line_settings({"deviations": ["test split limited to a fixed subset of 2000 images",
                                        "train split (linear probes) limited to a fixed subset of 500 images"]})
    assert (old["test_limit"], old["train_limit"]) == (2000, 500)
    assert line_settings({"deviations": ["samples drawn from the fitted latent prior, not N(0, I)"]})[
        "sample_prior"] != "standard"
    assert line_settings({"settings": {"test_limit": 64}, "deviations": []})["test_limit"] == 64
