"""Curves of metrics against images seen, from a run's network snapshots."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from training.curves import (
    CURVES_NAME,
    PROTOCOL_SETTINGS,
    UNRECORDED,
    classifier_mismatch,
    evaluate_snapshots,
    line_settings,
    plot_curves,
    snapshot_folders,
    wants_log_scale,
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


def test_panels_spanning_a_factor_of_ten_are_drawn_on_a_log_axis():
    assert wants_log_scale([229.6, 68.2, 15.2, 12.2])  # sample FD from the first snapshots to the late ones
    assert not wants_log_scale([0.62, 0.91])  # class agreement
    assert not wants_log_scale([0.0, 5.0, 80.0])  # a zero has no logarithm
    assert not wants_log_scale([])
    assert wants_log_scale([float("nan"), 2.0, 40.0])  # a diverged snapshot's NaN is not drawn


def test_a_run_missing_from_the_first_panel_keeps_its_colour_and_its_legend_entry(tmp_path):
    def line(images_seen, metric, value):
        return {"iteration": images_seen // 64, "images_seen": images_seen, "metrics": {metric: value}}

    only_first = [line(64_000, "recon_mse_test", 0.03), line(128_000, "recon_mse_test", 0.02)]
    only_second = [line(64_000, "fd10k_classifier", 200.0), line(128_000, "fd10k_classifier", 15.0)]
    figure = plot_curves({"a": only_first, "b": only_second}, ["recon_mse_test", "fd10k_classifier"],
                         tmp_path / "curves.png")
    with Image.open(figure) as image:
        width, height = image.size
        second_panel = image.convert("RGB").crop((width // 2, 0, width, height * 3 // 4))  # above the legend
        colours = {pixel for _, pixel in second_panel.getcolors(1 << 20)}
        legend = image.convert("RGB").crop((0, height * 3 // 4, width, height))
        legend_colours = {pixel for _, pixel in legend.getcolors(1 << 20)}
    # run b is the second run, so its line is matplotlib's second colour (orange, #ff7f0e) in every panel; drawn
    # from each panel's own colour cycle it would be the first (blue, #1f77b4), run a's
    orange, blue = (0xFF, 0x7F, 0x0E), (0x1F, 0x77, 0xB4)
    assert orange in colours and blue not in colours
    assert {orange, blue} <= legend_colours  # and both runs are in the legend


def test_the_legend_fits_the_figure_however_long_the_run_names(tmp_path):
    name = "fashion-mnist-32-scratch-joint-clamp-ncritic1-past-64k"
    lines = [{"iteration": 1000, "images_seen": 64_000, "metrics": {"recon_mse_test": 0.02}}]
    runs = {f"{name}-{i}": lines for i in range(4)}
    figure = plot_curves(runs, ["recon_mse_test"], tmp_path / "curves.png")
    with Image.open(figure) as image:
        pixels = image.convert("L")
        width, height = pixels.size
        # the legend's text sits in the bottom part; nothing dark may touch the figure's left or right edge there
        edges = [pixels.getpixel((x, y)) for y in range(height * 3 // 5, height) for x in (0, 1, width - 2, width - 1)]
    assert min(edges) > 200, "a legend label runs off the figure"


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
    assert line_settings({"deviations": []}) == PROTOCOL_SETTINGS
    old = line_settings({"deviations": ["test split limited to a fixed subset of 2000 images",
                                        "train split (linear probes) limited to a fixed subset of 500 images"]})
    assert (old["test_limit"], old["train_limit"]) == (2000, 500)
    assert line_settings({"deviations": ["samples drawn from the fitted latent prior, not N(0, I)"]})[
        "sample_prior"] != "standard"
    assert line_settings({"settings": {"test_limit": 64}, "deviations": []})["test_limit"] == 64


def test_lines_count_only_under_the_settings_asked_for(tmp_path):
    """A line measured at another edit strength, seed or class sets is another protocol; class sets given as
    tuples match the lists a line stores."""
    classes = {"long_sleeves": ((6, 2, 4), (0,))}
    line = {"images_seen": 16, "preset": "tiny", "deviations": [], "iteration": 2, "metrics": {"edit_success_x": 0.5}}
    stored = {**PROTOCOL_SETTINGS, "edit_classes": {"long_sleeves": [[2, 4, 6], [0]]}}
    _write_curves(tmp_path / "run", [{**line, "settings": stored}])
    run = tmp_path / "run"
    assert len(evaluate_snapshots(run, ["edit_success_x"], edit_classes=classes)) == 1
    assert evaluate_snapshots(run, ["edit_success_x"], edit_classes=classes, edit_strength=2) == []
    assert evaluate_snapshots(run, ["edit_success_x"], edit_classes=classes, seed=1) == []
    assert evaluate_snapshots(run, ["edit_success_x"]) == []  # the built-in class sets
    _write_curves(tmp_path / "old", [{**line, "settings": {"test_limit": None}}])  # before seed etc. were kept
    assert len(evaluate_snapshots(tmp_path / "old", ["edit_success_x"])) == 1


def test_a_diverged_snapshot_is_recorded_and_the_later_ones_still_measured(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    options = get_preset("tiny").override(total_iterations=4, network_snapshot_every=2, log_every=2,
                                          snapshot_every=100, checkpoint_every=100)
    run = tmp_path / "run"
    training_loop(options, run, progress=False)
    weights = snapshot_folders(run)[0][1] / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k in tensors if k.startswith("decoder.") and tensors[k].is_floating_point())
    tensors[name] = tensors[name] * float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    kwargs = {"test_limit": 32, "cache_dir": tmp_path / "cache", "show_progress": False}
    lines = evaluate_snapshots(run, ["recon_mse_test"], **kwargs)
    assert lines[0]["metrics"] == {} and "NaN or infinite" in lines[0]["error"]
    assert 0 < lines[1]["metrics"]["recon_mse_test"] < 1
    assert "iteration-0000002" in capsys.readouterr().err
    assert evaluate_snapshots(run, ["recon_mse_test"], **kwargs) == lines  # not tried again
    assert len((run / CURVES_NAME).read_text().splitlines()) == 2


def test_the_curves_command_draws_a_metric_renamed_by_num_samples(tmp_path, monkeypatch):
    """--num-samples 64 reports fd10k_classifier as fd64_classifier; the figure still gets its panel."""
    from typer.testing import CliRunner

    from training.cli import app

    monkeypatch.setenv("HOME", str(tmp_path))  # reference statistics cached here, not in the user's cache
    options = get_preset("tiny").override(total_iterations=2, network_snapshot_every=2, log_every=2,
                                          snapshot_every=100, checkpoint_every=100)
    training_loop(options, tmp_path / "run", progress=False)
    figure = tmp_path / "curves.png"
    result = CliRunner().invoke(app, ["curves", str(tmp_path / "run"), "--metrics", "fd10k_classifier",
                                      "--num-samples", "64", "--test-limit", "64", "-o", str(figure)])
    assert result.exit_code == 0, result.output
    assert "fd64_classifier" in result.output and figure.is_file()
    lines = evaluate_snapshots(tmp_path / "run", ["fd10k_classifier"], num_samples=64, test_limit=64)
    assert "fd64_classifier" in lines[0]["metrics"]  # measured above, read back
    expected = plot_curves({"run": lines}, ["fd64_classifier"], tmp_path / "expected.png")
    with Image.open(figure) as drawn, Image.open(expected) as wanted:
        assert drawn.tobytes() == wanted.tobytes()  # the measured panel, not an empty one named fd10k_classifier
