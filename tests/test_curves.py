"""Curves of metrics against images seen, from a run's network snapshots."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from training.curves import CURVES_NAME, evaluate_snapshots, plot_curves, snapshot_folders
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
    again = evaluate_snapshots(run, ["recon_mse_test"], test_limit=64, cache_dir=metrics_cache, show_progress=False)
    assert len((run / CURVES_NAME).read_text().splitlines()) == 2 and again == lines  # nothing re-evaluated
    assert json.loads((run / CURVES_NAME).read_text().splitlines()[0])["preset"] == "tiny"
    more = evaluate_snapshots(run, ["recon_mse_test", "recon_psnr_test"], test_limit=64, cache_dir=metrics_cache,
                              show_progress=False)  # a metric asked for later is added to every snapshot
    assert [sorted(line["metrics"]) for line in more] == [["recon_mse_test", "recon_psnr_test"]] * 2
    figure = plot_curves({"tiny": lines}, ["recon_mse_test"], tmp_path / "curves.png")
    with Image.open(figure) as image:
        assert image.size[0] > 300
