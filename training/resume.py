"""Where ``--resume-from`` starts a run: another run folder, or a release (its name, Hub repo or folder).

A run folder's ``checkpoint.pt`` and a release's optional ``training_state.safetensors`` hold the whole
training state, so a run continued from either goes on exactly as the original would have. A release
without a training state gives only its encoder and decoder: the discriminator (and the momentum copy,
the queues, the optimizer moments) start afresh. Training on other data than the source's (fine-tuning)
keeps everything but the data loader's position.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from .options import OptionsError, TrainingOptions
from .state_file import load_training_state

# options that must match the source for its networks to load
_ARCHITECTURE_KEYS = ("architecture", "architecture_args", "latent_dim", "channels", "image_size")
# options that, when they differ, make the source's loader position meaningless here (fine-tuning)
# (data_root is left out: the same data at another path on another machine continues exactly)
_DATA_KEYS = ("dataset", "batch_size", "seed", "image_size", "channels")


@dataclass
class StartingPoint:
    """The state a new run starts from, and what a person should be told about it."""

    state: dict[str, Any]
    note: str


def _source_options(state: dict[str, Any]) -> dict[str, Any] | None:
    raw = state.get("options")
    return json.loads(raw) if isinstance(raw, str) else None


def _check_architecture(source: dict[str, Any], options: TrainingOptions, where: str) -> None:
    mine = options.to_dict()
    differ = [f"{k}: {source.get(k)!r} there, {mine[k]!r} here" for k in _ARCHITECTURE_KEYS if source.get(k) != mine[k]]
    if differ:
        raise OptionsError(
            f"cannot resume from {where}: its networks differ from this run's ({'; '.join(differ)}). "
            "Use the preset it was trained with, or override those options to match."
        )


def _changed_options(source: dict[str, Any], options: TrainingOptions) -> str:
    """``"; with options changed from the source's: ..."`` naming each training option (not the schedule or
    bookkeeping a resume may change) that this run sets otherwise than the source did, or ``""``.

    A continuation may change any option (that is how ablations branch off a state), but a preset's defaults can
    silently undo what the source was trained with (``decoder_batch``, ``prior_clamp``, ``amp``): saying so
    lets a person see it before hours of training.
    """
    from .run_state import RESUME_SAFE_OPTIONS

    mine, defaults = options.to_dict(), TrainingOptions().to_dict()
    # an option newer than the source's state was at its default there (as check_resume_options reads it)
    changed = [
        f"{key} {mine[key]!r} (was {source.get(key, defaults[key])!r})"
        for key in mine
        if key not in RESUME_SAFE_OPTIONS and source.get(key, defaults[key]) != mine[key]
    ]
    if not changed:
        return ""
    return (f"; with options changed from the source's: {', '.join(changed)} "
            "(to keep a source's value, pass it: --set KEY=VALUE)")


def weights_only_state(model: Any, options: TrainingOptions) -> dict[str, Any]:
    """Training encoder/decoder states from a release model (whose encoder has spectral norm folded in)."""
    from dcvae_tools.networks import build_network

    config = options.model_config()
    encoder = build_network(config, "encoder", spectral_norm=True)
    plain = model.encoder.state_dict()
    with torch.no_grad():
        for name, module in encoder.named_modules():
            if parametrize.is_parametrized(module, "weight"):
                module.parametrizations.weight.original.copy_(plain[f"{name}.weight" if name else "weight"])
        for name, tensor in encoder.state_dict().items():
            if "parametrizations" not in name:
                tensor.copy_(plain[name])
        # the folded weights' largest singular value is about 1 (it was divided by the estimate of the
        # time); power iterations recompute the estimate, which shifts a long-trained encoder's outputs
        # by about 1-2% (the release keeps no power-iteration vectors to do better)
        encoder.train()
        probe = torch.zeros(2, options.channels, options.image_size, options.image_size)
        for _ in range(30):
            encoder(probe)
    decoder = model.decoder.state_dict()
    return {"iteration": 0, "E": encoder.state_dict(), "G": decoder, "G_ema": decoder}


def starting_point(
    source: str | Path,
    options: TrainingOptions,
    *,
    cache_dir: str | Path | None = None,
    endpoint: str | None = None,
    local_files_only: bool = False,
) -> StartingPoint:
    """Load the state a run continues from; check that its networks fit ``options``.

    ``source`` is a run folder (or its ``checkpoint.pt``), a release folder, a released model's name or a Hub
    repo id. Raises ``OptionsError`` when the architectures differ.
    """
    from dcvae_tools import load_model
    from dcvae_tools.hub import is_explicit_path, locate_training_state
    from dcvae_tools.manifest import load_manifest

    from .run_state import CHECKPOINT_NAME, load_checkpoint

    path = Path(source).expanduser()
    checkpoint = path / CHECKPOINT_NAME if path.is_dir() else path
    # a released name always means the release, even when a run folder of that name exists here
    released = isinstance(source, str) and not is_explicit_path(source) and load_manifest().get(source) is not None
    if not released and checkpoint.is_file() and checkpoint.name == CHECKPOINT_NAME:
        state, kind = load_checkpoint(checkpoint), f"run {checkpoint.parent}"
    else:
        kw = {"cache_dir": cache_dir, "endpoint": endpoint, "local_files_only": local_files_only}
        found = locate_training_state(source, **kw)
        if found is not None:
            state, kind = load_training_state(*found), f"the training state of {source}"
        else:
            model = load_model(source, **kw)
            _check_architecture(
                {**options.to_dict(), **{k: getattr(model.config, k) for k in ("latent_dim", "channels", "image_size")},
                 "architecture": model.config.architecture, "architecture_args": dict(model.config.architecture_args)},
                options,
                str(source),
            )
            return StartingPoint(
                weights_only_state(model, options),
                f"{source} has no training state: starting from its encoder and decoder with a fresh "
                "discriminator, queues and optimizer moments (iteration 0; the encoder's spectral-norm estimate "
                "is recomputed, which shifts its outputs slightly)",
            )
    from .progressive import CHECKPOINT_FORMAT as PROGRESSIVE_FORMAT

    if state.get("format") == PROGRESSIVE_FORMAT:
        raise OptionsError(
            f"cannot resume from {kind}: it is a progressive run's state (networks that grow by stage, with a "
            "fade-in this loop does not have). Continue it with its own progressive preset and --run-dir, or "
            "start from one of its finished stages: --resume-from RUN/stages/<R>x<R>"
        )
    source_options = _source_options(state)
    if source_options is not None:
        _check_architecture(source_options, options, kind)
        if "D_M" in state and not TrainingOptions(objective=source_options.get("objective", "dcvae")).uses_contrastive:
            # saved but never updated (only the contrastive step moves it): the run starts it as a copy of D
            state = {k: v for k, v in state.items() if k != "D_M"}
            kind += (f" (objective {source_options.get('objective')}: its momentum discriminator never trained, so "
                     "it starts as a copy of the discriminator)")
        mine = options.to_dict()
        if any(source_options.get(k) != mine[k] for k in _DATA_KEYS):
            state = {k: v for k, v in state.items() if k != "loader"}
            for queue in state.get("queues", {}).values():  # the ids index the source's data, not this one
                if "ids" in queue:
                    queue["ids"] = torch.full_like(queue["ids"], -1)
            return StartingPoint(
                state, f"fine-tuning from {kind} (iteration {state['iteration']}) on other data: the data "
                "order starts afresh, everything else continues" + _changed_options(source_options, options)
            )
        return StartingPoint(
            state, f"continuing {kind} from iteration {state['iteration']}" + _changed_options(source_options, options)
        )
    return StartingPoint(state, f"continuing {kind} from iteration {state['iteration']}")
