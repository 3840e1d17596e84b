"""Export a training run to the release format: folded encoder, EMA decoder, config, card, manifest entry."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from dcvae_tools.io_utils import atomic_write_text
from dcvae_tools.model import DCVAE, AttributeVector
from dcvae_tools.networks import build_network
from dcvae_tools.networks.layers import fold_spectral_norm
from dcvae_tools.release import load_release, save_pretrained

from .batchnorm_statistics import DECODER_STATISTICS, recompute_from_training_images
from .curves import SNAPSHOTS_DIR, snapshot_folders
from .options import TrainingOptions
from .state_file import TRAINING_STATE_NAME, save_training_state
from .training_loop import CHECKPOINT_NAME, load_checkpoint

POSTERIOR_IMAGES = 10_000
"""Training images (at most) whose posterior draws set the decoder's BatchNorm statistics (decoder_statistics=
posterior)."""


POSTERIOR_STATISTICS_NOTE = "decoder BatchNorm statistics from posterior draws"
"""Part of a config's description saying its decoder's statistics were recomputed (checked against reports)."""


_BUDGET_UNIT = "images"
_BUDGET = re.compile(r"([\d,]+) iterations of \d+ " + _BUDGET_UNIT)


def iterations_in_description(description: str | None) -> int | None:
    """The training budget :func:`inference_model` writes into a config's description ("...; 72,500 iterations of
    64 images"), or None when the description states none."""
    found = _BUDGET.search(description) if isinstance(description, str) else None
    return int(found.group(1).replace(",", "")) if found else None


def snapshot_folder(run_dir: str | Path, iteration: int) -> Path:
    """The run's network snapshot at ``iteration`` (``network-snapshots/iteration-NNNNNNN``).

    Raises:
        FileNotFoundError: naming the snapshots the run has, when it has none at that iteration.
    """
    if not (Path(run_dir) / SNAPSHOTS_DIR).is_dir():
        if (Path(run_dir) / "progressive_schedule.json").is_file():
            raise FileNotFoundError(f"{run_dir} is a progressive run, which keeps no network snapshots: release its "
                                    "checkpoint (without --snapshot); its finished stages are release folders already, "
                                    "under stages/<R>x<R>/")
        raise FileNotFoundError(f"{run_dir} has no {SNAPSHOTS_DIR}/: pass a run folder trained with "
                                "--set network_snapshot_every=N")
    found = dict(snapshot_folders(run_dir))
    if iteration not in found:
        have = ", ".join(str(i) for i in found) or "none yet"
        raise FileNotFoundError(f"{run_dir} has no network snapshot at iteration {iteration} in {SNAPSHOTS_DIR}/; "
                                f"it has: {have}")
    return found[iteration]


def model_from_run(
    run_dir: str | Path, metrics: Mapping[str, Any] | None = None, *, snapshot: int | None = None
) -> DCVAE:
    """The inference model of a run: encoder with spectral norm folded in, the EMA decoder.

    By default the run's latest checkpoint; with ``snapshot`` its network snapshot at that iteration (written by
    the same :func:`inference_model`, so the two agree where they share an iteration).
    """
    if snapshot is not None:
        # only what a checkpoint export would hold: files derived later (latent-stats run on the snapshot) would
        # describe other statistics than an export may write, so they are neither read nor carried
        model = load_release(snapshot_folder(run_dir, snapshot), read_derived=False)
        model.config = dataclasses.replace(model.config, metrics=dict(metrics or {}))
        model.attributes = {}
        return model
    return model_from_checkpoint(load_checkpoint(Path(run_dir) / CHECKPOINT_NAME), metrics)


def model_from_checkpoint(state: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> DCVAE:
    """The inference model of a loaded run checkpoint (``training_loop.load_checkpoint``).

    A progressive run's checkpoint gives its current stage at the fade-in alpha it was trained at, as
    ``training.progressive.export_stage`` writes it. A caller that also reads the checkpoint's iteration
    passes the one state it loaded, so a run still training cannot replace it in between.
    """
    if is_progressive(state):
        from .progressive import stage_model

        return stage_model(state, metrics)
    options = TrainingOptions.from_dict(json.loads(state["options"]))
    return inference_model(options, state["E"], state["G_ema"], metrics, iterations=int(state["iteration"]))


def is_progressive(state: Mapping[str, Any]) -> bool:
    """Whether a loaded run checkpoint is a progressive run's (``training.progressive``)."""
    from .progressive import CHECKPOINT_FORMAT as PROGRESSIVE_FORMAT

    return state.get("format") == PROGRESSIVE_FORMAT


def inference_model(
    options: TrainingOptions,
    encoder_state: Mapping[str, torch.Tensor],
    ema_decoder_state: Mapping[str, torch.Tensor],
    metrics: Mapping[str, Any] | None = None,
    iterations: int | None = None,
) -> DCVAE:
    """The release model from a training encoder (spectral norm folded in) and the EMA decoder's weights.

    With ``iterations`` (how many the networks were trained) the config's description says so, so a release's
    card states its real budget even when the run was continued past its preset's.
    """
    config = options.model_config(dict(metrics or {}))
    if iterations is not None:
        budget = f"{iterations:,} iterations of {options.batch_size} {_BUDGET_UNIT}"
        description = f"{config.description}; {budget}" if config.description else f"trained {budget}"
        config = dataclasses.replace(config, description=description)
    encoder = build_network(config, "encoder", spectral_norm=True)
    encoder.load_state_dict(encoder_state)
    fold_spectral_norm(encoder)
    model = DCVAE(config)
    model.encoder.load_state_dict(encoder.state_dict())
    model.decoder.load_state_dict(ema_decoder_state)
    return model.eval()


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    attributes: Mapping[str, AttributeVector] | None = None,
    training_state: bool = False,
    decoder_statistics: str = "training",
    data_root: str | None = None,
    progress: Callable[[str], None] | None = None,
    snapshot: int | None = None,
    checkpoint: Mapping[str, Any] | None = None,
) -> Path:
    """Write the run's checkpoint (or with ``snapshot``, its network snapshot at that iteration) in the release
    format to ``out_dir``.

    ``checkpoint`` is the run's checkpoint already loaded (``training_loop.load_checkpoint``): a caller that read
    its iteration or measured its networks passes it, so what is exported is what it read even if the run, still
    training, has written a newer one since. A progressive run's checkpoint exports its current stage (as
    ``training.progressive.export_stage``), with the statistics training left and without training state.

    With ``training_state`` the folder also gets ``training_state.safetensors``: the run's whole checkpoint
    (pickle-free), from which ``dcvae-train train --resume-from`` continues exactly. ``decoder_statistics``
    ``"posterior"`` recomputes the decoder's BatchNorm running statistics from posterior draws of training
    images (``training.batchnorm_statistics``; ``data_root`` is where the data lives) and says so in the
    config's description; ``"training"`` keeps them as training left them.
    """
    if decoder_statistics not in DECODER_STATISTICS:
        raise ValueError(f"decoder_statistics={decoder_statistics!r}: must be one of {', '.join(DECODER_STATISTICS)}")
    if training_state and snapshot is not None:
        raise ValueError(f"the network snapshot at {snapshot} has no training state of its own (the run's checkpoint "
                         "is at another iteration): export the snapshot without it")
    # the checkpoint is read once: a run still training may replace it while this exports, and the weights and
    # the training state must come from the same iteration
    if checkpoint is not None and snapshot is not None:
        raise ValueError("pass the loaded checkpoint or a snapshot iteration, not both")
    state: Mapping[str, Any] | None = None
    if snapshot is None:
        state = checkpoint if checkpoint is not None else load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
        if is_progressive(state) and (training_state or decoder_statistics != "training"):
            raise ValueError(f"{run_dir} is a progressive run: its stages are exported with the statistics training "
                             "left and without training state (it continues from its own folder)")
        model = model_from_checkpoint(state, metrics)
    else:
        model = model_from_run(run_dir, metrics, snapshot=snapshot)
    if decoder_statistics == "posterior":
        _, drawn = recompute_from_training_images(model, data_root=data_root, images=POSTERIOR_IMAGES,
                                                  progress=progress)
        note = f"{POSTERIOR_STATISTICS_NOTE} of {drawn:,} training images"
        description = f"{model.config.description}; {note}" if model.config.description else note
        model.config = dataclasses.replace(model.config, description=description)
    model.attributes = dict(attributes or {})
    # a state left from an earlier export would not match these weights: gone before they are written, so a
    # failure below never leaves new weights beside an old state
    (Path(out_dir) / TRAINING_STATE_NAME).unlink(missing_ok=True)
    folder = save_pretrained(model, out_dir)
    if training_state:
        assert state is not None  # training_state with a snapshot was refused above
        save_training_state(dict(state), folder / TRAINING_STATE_NAME)
    return folder


def update_manifest(
    manifest_path: str | Path, name: str, entry: Mapping[str, Any], *, default: bool = False
) -> None:
    """Add or replace ``name`` in the manifest (atomically), optionally making it the default model."""
    path = Path(manifest_path)
    data = (
        json.loads(path.read_text(encoding="utf-8"))
        if path.is_file()
        else {"format_version": 1, "models": {}}
    )
    data.setdefault("models", {})[name] = dict(entry)
    if default or data.get("default_model") is None:
        data["default_model"] = name
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")
