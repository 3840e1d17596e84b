"""Progressive growing (Karras et al., ICLR 2018) of a DC-VAE with the ``progan`` backbone.

The DC-VAE objective is unchanged (``objective.DCVAELoss``, the same phases and update order as
``training_loop``); only the networks grow: 4x4 first, then each resolution is faded in (alpha 0 -> 1 over
``fade_images`` real images, real images blended the same way) and trained ``stable_images`` more.

- Growing builds the next stage's networks and loads the previous stage's state dicts with strict=False,
  checking that exactly the new resolution's layers are missing (``dcvae_tools.networks.progan`` keys every
  layer by resolution, so nothing else changes name or shape). The EMA decoder and the momentum
  discriminator take their new layers from the decoder and the discriminator.
- The contrastive queues persist across stages; the Adam states restart at every stage (ProGAN's default).
  ``ProgressiveSchedule.decoder_lr`` gives the equalized-lr decoder its own learning rate (ProGAN: 1e-3).
- Alpha is quantised to multiples of 1/1000 (``Stage.alpha_x1000``), so a checkpoint exported mid fade-in
  records ``fade_alpha_x1000`` in its config and reproduces the training function exactly.
- ``checkpoint.pt`` holds the full state (networks, optimizers, queues, loader position, RNG, schedule
  position) as tensors and plain containers (``torch.load(weights_only=True)``); a resumed run, also one
  stopped in the middle of a fade-in, continues exactly as the uninterrupted run.
- At the end of every stage the run writes ``stages/<R>x<R>/`` in the release format; ``export_stage``
  exports the current checkpoint (any point of any stage) the same way.

Single process only (no DDP) for now. Data: every ``training.data.make_dataset`` name (images are resized,
never padded, at every stage), plus ``skimage-lfw-faces`` (scikit-image's 100 LFW faces, 25x25 grey),
``celebahq[:<path>]`` (a folder of the 30,000 CelebA-HQ images: the first 29,000 by file name are the
training split, the last 1,000 the validation split) and ``lsun[:<path>]`` (an LSUN lmdb folder such as
``bedroom_train_lmdb``; needs ``pip install lmdb``).

Example:
    >>> from training.presets import get_preset
    >>> from training.presets.faces_progan32 import SCHEDULE
    >>> progressive_training_loop(get_preset("faces-progan32"), SCHEDULE, "runs/faces")  # doctest: +SKIP
    >>> export_stage("runs/faces", "exported/faces-16")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset, Subset

from dcvae_tools.config import ModelConfig
from dcvae_tools.images import convert_image, save_grid
from dcvae_tools.io_utils import atomic_write_text
from dcvae_tools.model import DCVAE, AttributeVector
from dcvae_tools.networks import build_network, progan
from dcvae_tools.networks.layers import fold_spectral_norm
from dcvae_tools.release import save_pretrained

from .data import ArrayImageDataset, ImageFolderDataset, InfiniteLoader, make_dataset
from .loss import FeatureQueue
from .objective import DCVAELoss, logit_path_parameters, training_autocast
from .options import OptionsError, TrainingOptions
from .progress_bar import TrainingProgress
from .run_state import (
    CHECKPOINT_NAME,
    OPTIONS_NAME,
    STATS_NAME,
    StatsLog,
    capture_rng_state,
    check_resume_options,
    dropped_lines_note,
    load_checkpoint,
    make_feature_queues,
    restore_trainer_state,
    trainer_state,
    write_checkpoint,
)
from .stop_request import StopRequest
from .training_loop import training_iteration

CHECKPOINT_FORMAT = "dcvae-progressive-1"
SCHEDULE_NAME = "progressive_schedule.json"
STAGES_DIR = "stages"
CELEBAHQ_TRAIN, CELEBAHQ_VALIDATION = 29_000, 1_000
LFW_FACES = 100  # skimage.data.lfw_subset(): the first 100 of its 200 images are faces


# ------------------------------------------------------------------------------------------ schedule


@dataclass(frozen=True)
class Stage:
    """One resolution of the schedule: a fade-in (none for the first stage), then stable training."""

    index: int
    resolution: int
    fade_images: int  # real images shown while alpha goes 0 -> 1
    stable_images: int  # real images shown at alpha 1 afterwards
    batch_size: int  # real images per iteration
    gen_batch_size: int  # prior samples in the generator step

    @property
    def total_images(self) -> int:
        return self.fade_images + self.stable_images

    @property
    def iterations(self) -> int:
        return math.ceil(self.total_images / self.batch_size)

    def alpha_x1000(self, images_seen: int) -> int:
        """Alpha x 1000 for the iteration that starts after ``images_seen`` images of this stage."""
        if self.fade_images == 0:
            return 1000
        return min(1000, images_seen * 1000 // self.fade_images)


@dataclass(frozen=True)
class ProgressiveSchedule:
    """How long each resolution trains and with which batch size (counted in real images, like ProGAN)."""

    start_resolution: int = 4  # the first stage (no fade-in)
    stable_images: int = 800_000  # per stage, after its fade-in (ProGAN paper: 800k)
    fade_images: int = 800_000  # per fade-in (ProGAN paper: 800k)
    final_stable_images: int | None = None  # the last stage's stable length; None: stable_images
    batch_sizes: dict[int, int] = field(default_factory=dict)  # resolution -> batch; missing: options.batch_size
    gen_batch_sizes: dict[int, int] = field(default_factory=dict)  # missing: batch x the options' gen/real ratio
    decoder_lr: float | None = None  # Adam lr of the equalized-lr decoder (ProGAN: 1e-3); None: options.lr

    def validate(self, final_resolution: int) -> ProgressiveSchedule:
        """Raise OptionsError naming the bad field."""
        sizes = progan.IMAGE_SIZES
        if self.start_resolution not in sizes or self.start_resolution > final_resolution:
            raise OptionsError(
                f"schedule start_resolution={self.start_resolution}: must be a power of two in 4..{final_resolution}"
            )
        if self.stable_images < 0 or self.fade_images < 1:
            raise OptionsError("schedule: stable_images must be >= 0 and fade_images >= 1")
        if self.final_stable_images is not None and self.final_stable_images < 0:
            raise OptionsError("schedule: final_stable_images must be >= 0")
        for name in ("batch_sizes", "gen_batch_sizes"):
            for res, value in getattr(self, name).items():
                if res not in sizes or value < 1:
                    raise OptionsError(f"schedule {name}[{res}]={value}: need a power-of-two resolution, value >= 1")
        if self.decoder_lr is not None and not self.decoder_lr > 0:
            raise OptionsError(f"schedule decoder_lr={self.decoder_lr}: must be > 0")
        if self.start_resolution == final_resolution and (self.final_stable_images or self.stable_images) == 0:
            raise OptionsError("schedule: a single-stage schedule needs stable images")
        return self

    def stages(self, options: TrainingOptions) -> list[Stage]:
        """The stages from ``start_resolution`` to the options' ``image_size`` (the final resolution)."""
        final = options.image_size
        self.validate(final)
        ratio = options.gen_batch_size / options.batch_size
        out = []
        resolution = self.start_resolution
        while resolution <= final:
            batch = self.batch_sizes.get(resolution, options.batch_size)
            last = resolution == final
            stable = self.final_stable_images if last and self.final_stable_images is not None else self.stable_images
            out.append(
                Stage(
                    index=len(out),
                    resolution=resolution,
                    fade_images=0 if resolution == self.start_resolution else self.fade_images,
                    stable_images=stable,
                    batch_size=batch,
                    gen_batch_size=self.gen_batch_sizes.get(resolution, max(1, round(batch * ratio))),
                )
            )
            resolution *= 2
        return out

    def total_iterations(self, options: TrainingOptions) -> int:
        return sum(stage.iterations for stage in self.stages(options))

    def to_dict(self) -> dict[str, Any]:
        return {
            "start_resolution": self.start_resolution,
            "stable_images": self.stable_images,
            "fade_images": self.fade_images,
            "final_stable_images": self.final_stable_images,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "gen_batch_sizes": {str(k): v for k, v in sorted(self.gen_batch_sizes.items())},
            "decoder_lr": self.decoder_lr,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProgressiveSchedule:
        data = dict(data)
        for name in ("batch_sizes", "gen_batch_sizes"):
            data[name] = {int(k): int(v) for k, v in data.get(name, {}).items()}
        return cls(**data)


def stage_options(options: TrainingOptions, stage: Stage, alpha_x1000: int = 1000) -> TrainingOptions:
    """The options of one stage: its resolution and batch sizes; ``fade_alpha_x1000`` only when < 1000."""
    args = {k: v for k, v in options.architecture_args.items() if k != "fade_alpha_x1000"}
    args["max_resolution"] = options.image_size
    if alpha_x1000 < 1000:
        args["fade_alpha_x1000"] = int(alpha_x1000)
    return options.override(
        image_size=stage.resolution,
        batch_size=stage.batch_size,
        gen_batch_size=stage.gen_batch_size,
        architecture_args=args,
        content_size=None,
    )


def check_progressive_options(options: TrainingOptions) -> TrainingOptions:
    """Validate options for progressive training (the progan backbone, final resolution = image_size)."""
    o = options.validate().check_time_limit()
    if o.architecture != "progan":
        raise OptionsError(f"architecture={o.architecture!r}: progressive training needs 'progan'")
    target = o.architecture_args.get("max_resolution", o.image_size)
    if target != o.image_size:
        raise OptionsError(
            f"architecture_args.max_resolution={target} must equal image_size={o.image_size} (the final resolution)"
        )
    if "fade_alpha_x1000" in o.architecture_args:
        raise OptionsError("architecture_args.fade_alpha_x1000 is set by the schedule, not by the options")
    if o.content_size not in (None, o.image_size):
        raise OptionsError("content_size: progressive training resizes images, so leave it unset")
    # options the progressive loop does not read (it builds new networks at each stage): refused, not ignored
    unsupported = {
        "network_snapshot_every": (0, "a progressive run writes each stage to stages/<R>x<R>/ instead"),
        "channels_last": (False, "the progressive loop trains in the default memory format"),
        "compile": (False, "the progressive loop does not compile its networks, which change at each stage"),
        "translate": (0, "the progressive loop fades its real images between resolutions and shifts none"),
    }
    for name, (default, why) in unsupported.items():
        if getattr(o, name) != default:
            raise OptionsError(f"{name}={getattr(o, name)!r} is for single-resolution training ({why}): leave it "
                               f"at {default!r}")
    return o


# ------------------------------------------------------------------------------------------ data


def load_lfw_faces() -> np.ndarray:
    """scikit-image's LFW subset, faces only: uint8 [100, 25, 25] grey."""
    try:
        from skimage import data as skdata
    except ImportError as err:
        raise ModuleNotFoundError("dataset 'skimage-lfw-faces' needs scikit-image: pip install scikit-image") from err
    images = np.asarray(skdata.lfw_subset())[:LFW_FACES]
    if images.dtype != np.uint8:  # scikit-image ships it as float64 in [0, 1]
        images = (np.clip(images, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return images


def _natural_key(text: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def celebahq_dataset(root: str | Path, split: str, image_size: int, channels: int) -> Dataset:
    """CelebA-HQ from a folder of its 30,000 images: 29,000 training / 1,000 validation images.

    Files are ordered by name with numbers compared as numbers (``2.jpg`` before ``10.jpg``); the first
    29,000 are the training split (``"train"``), the last 1,000 the validation split (``"test"``).
    """
    if split not in ("train", "test", "validation"):
        raise ValueError(f"celebahq split must be 'train', 'test' or 'validation', got {split!r}")
    folder = ImageFolderDataset(root, image_size, channels, content_size=image_size)
    expected = CELEBAHQ_TRAIN + CELEBAHQ_VALIDATION
    if len(folder) != expected:
        raise ValueError(f"CelebA-HQ has {expected:,} images; found {len(folder):,} under {root}")
    order = sorted(range(len(folder)), key=lambda i: _natural_key(folder.files[i].relative_to(folder.root).as_posix()))
    return Subset(folder, order[:CELEBAHQ_TRAIN] if split == "train" else order[CELEBAHQ_TRAIN:])


def _require_lmdb() -> Any:
    try:
        import lmdb
    except ImportError as err:
        raise ModuleNotFoundError(
            "LSUN data is read from its lmdb database, which needs the lmdb package: pip install lmdb"
        ) from err
    return lmdb


class LSUNLmdbDataset(Dataset[tuple[torch.Tensor, int]]):
    """An LSUN category's lmdb folder (e.g. ``bedroom_train_lmdb``): encoded images keyed by id.

    Keys are listed once, in the database's (sorted) order; images are decoded with Pillow (JPEG/WebP),
    centre-cropped to a square and resized to ``image_size``. Labels are 0.
    """

    def __init__(self, path: str | Path, image_size: int, channels: int, max_images: int | None = None) -> None:
        lmdb = _require_lmdb()
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"LSUN lmdb not found: {self.path}")
        self.image_size, self.channels = image_size, channels
        env = self._open(lmdb)
        try:
            with env.begin(write=False) as txn:
                keys = []
                for key in txn.cursor().iternext(keys=True, values=False):
                    keys.append(bytes(key))
                    if max_images is not None and len(keys) >= max_images:
                        break
        finally:
            env.close()
        if not keys:
            raise FileNotFoundError(f"LSUN lmdb {self.path} holds no images")
        self.keys = keys
        self._env: Any = None

    def _open(self, lmdb: Any) -> Any:
        return lmdb.open(
            str(self.path), readonly=True, lock=False, readahead=False, meminit=False, subdir=self.path.is_dir()
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_env"] = None  # each DataLoader worker opens its own handle
        return state

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        if self._env is None:
            self._env = self._open(_require_lmdb())
        with self._env.begin(write=False) as txn:
            value = txn.get(self.keys[index])
        if value is None:
            raise KeyError(f"{self.path}: key {self.keys[index]!r} vanished")
        with Image.open(io.BytesIO(value)) as img:
            img.load()
            image, _ = convert_image(
                img, size=self.image_size, channels=self.channels, label=f"{self.path}[{self.keys[index]!r}]"
            )
        return image, 0


def make_progressive_dataset(
    name: str, split: str, image_size: int, channels: int, data_root: str | None
) -> Dataset[tuple[torch.Tensor, int]]:
    """A dataset at one stage's resolution (see the module docstring for the names)."""
    for prefix in ("celebahq", "lsun"):
        if name == prefix or name.startswith(prefix + ":"):
            path = name[len(prefix) + 1 :] or data_root
            if not path:
                raise ValueError(f"dataset {prefix!r} needs --data-root (or the name '{prefix}:<path>')")
            if prefix == "celebahq":
                return celebahq_dataset(path, split, image_size, channels)
            return LSUNLmdbDataset(path, image_size, channels)
    if name == "skimage-lfw-faces":
        return ArrayImageDataset(load_lfw_faces(), None, image_size, channels, content_size=image_size)
    return make_dataset(name, split, image_size, channels, data_root, content_size=image_size)


def fade_reals(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """Real images during a fade-in: ``lerp(up(avgpool(x)), x, alpha)`` (ProGAN blends reals like outputs)."""
    if alpha >= 1.0:
        return x
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2.0, mode="nearest")
    return torch.lerp(low, x, alpha)


# ------------------------------------------------------------------------------------------ networks


@dataclass
class _Networks:
    E: nn.Module
    G: nn.Module
    G_ema: nn.Module
    D: nn.Module | None
    D_M: nn.Module | None

    def named(self) -> dict[str, nn.Module]:
        return {k: v for k, v in vars(self).items() if v is not None}

    def set_alpha(self, alpha: float) -> None:
        for net in self.named().values():
            progan.set_alpha(net, alpha)


def _build_networks(config: ModelConfig, o: TrainingOptions, device: torch.device) -> _Networks:
    E = build_network(config, "encoder", spectral_norm=True).to(device)
    G = build_network(config, "decoder").to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    D = D_M = None
    if o.uses_discriminator:
        D = build_network(config, "discriminator", spectral_norm=True).to(device)
        D_M = copy.deepcopy(D).eval().requires_grad_(False)
    return _Networks(E, G, G_ema, D, D_M)


def grow_into(old: nn.Module, new: nn.Module, resolution: int) -> list[str]:
    """Load ``old``'s weights into ``new`` (built at ``resolution``); return the keys left at their init.

    Raises RuntimeError unless the missing keys are exactly the layers new at ``resolution``
    (``progan.new_layer_prefixes``) and nothing is unexpected.
    """
    prefixes = progan.new_layer_prefixes(resolution)
    old_state = old.state_dict()
    result = new.load_state_dict(old_state, strict=False)
    wrong_missing = [k for k in result.missing_keys if not k.startswith(prefixes)]
    not_new = [k for k in old_state if k.startswith(prefixes)]
    if result.unexpected_keys or wrong_missing or not_new:
        raise RuntimeError(
            f"growing to {resolution}x{resolution}: unexpected {result.unexpected_keys[:5]}, "
            f"missing non-new {wrong_missing[:5]}, new layers already present {not_new[:5]}"
        )
    return list(result.missing_keys)


@torch.no_grad()
def _copy_keys(source: nn.Module, target: nn.Module, keys: list[str]) -> None:
    src, dst = source.state_dict(), target.state_dict()
    for key in keys:
        dst[key].copy_(src[key])


def _grow_networks(old: _Networks, config: ModelConfig, o: TrainingOptions, device: torch.device) -> _Networks:
    new = _build_networks(config, o, device)
    resolution = config.image_size
    grow_into(old.E, new.E, resolution)
    new_g = grow_into(old.G, new.G, resolution)
    grow_into(old.G_ema, new.G_ema, resolution)
    _copy_keys(new.G, new.G_ema, new_g)  # the EMA of a new layer starts at the layer
    if new.D is not None:
        new_d = grow_into(old.D, new.D, resolution)
        grow_into(old.D_M, new.D_M, resolution)
        _copy_keys(new.D, new.D_M, new_d)
    return new


def release_model(
    options: TrainingOptions,
    stage: Stage,
    alpha_x1000: int,
    encoder_state: Mapping[str, torch.Tensor],
    decoder_state: Mapping[str, torch.Tensor],
    metrics: Mapping[str, Any] | None = None,
    iterations: int | None = None,
) -> DCVAE:
    """The inference model of one stage: folded encoder, the given (EMA) decoder, alpha in the config (and, with
    ``iterations``, the whole run's iteration count in its description)."""
    so = stage_options(options, stage, alpha_x1000)
    config = so.model_config(dict(metrics or {}))
    note = f"stage {stage.resolution}x{stage.resolution} of {options.image_size}x{options.image_size}"
    if alpha_x1000 < 1000:
        note += f", fade-in alpha {alpha_x1000 / 1000:.3f}"
    if iterations is not None:
        note += f"; {iterations:,} iterations"
    config = ModelConfig.from_dict(
        {**config.to_dict(), "description": f"{options.description} ({note})" if options.description else note}
    )
    with torch.random.fork_rng(devices=[]):  # building must not move the training RNG
        encoder = build_network(config, "encoder", spectral_norm=True)
        encoder.load_state_dict(dict(encoder_state))
        fold_spectral_norm(encoder)
        model = DCVAE(config)
    model.encoder.load_state_dict(encoder.state_dict())
    model.decoder.load_state_dict(dict(decoder_state))
    return model.eval()


def export_stage(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    attributes: Mapping[str, AttributeVector] | None = None,
) -> Path:
    """Write the run's current checkpoint (any stage, mid fade-in included) in the release format."""
    state = load_checkpoint(Path(run_dir) / CHECKPOINT_NAME)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{run_dir} is not a progressive run (use training.export.export_run)")
    model = stage_model(state, metrics)
    model.attributes = dict(attributes or {})
    return save_pretrained(model, out_dir)


def stage_model(state: Mapping[str, Any], metrics: Mapping[str, Any] | None = None) -> DCVAE:
    """The inference model of a loaded progressive checkpoint: its current stage, at the alpha it trained at."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a progressive checkpoint (format {state.get('format')!r}, not {CHECKPOINT_FORMAT!r})")
    options = TrainingOptions.from_dict(json.loads(state["options"]))
    stage = ProgressiveSchedule.from_dict(json.loads(state["schedule"])).stages(options)[int(state["stage"])]
    return release_model(options, stage, int(state["alpha_x1000"]), state["E"], state["G_ema"], metrics,
                         iterations=int(state["iteration"]))


def _save_checkpoint(
    path: Path,
    position: dict[str, int],
    stage: Stage,
    nets: _Networks,
    optimizers: dict[str, torch.optim.Optimizer | None],
    scaler: torch.amp.GradScaler,
    queues: dict[str, FeatureQueue],
    loader: InfiniteLoader,
    options: TrainingOptions,
    schedule: ProgressiveSchedule,
    device: torch.device,
) -> None:
    """The full training state: tensors and plain containers only (loadable with weights_only=True)."""
    state = trainer_state(
        networks=nets.named(), optimizers=optimizers, scaler=scaler, queues=queues, loader=loader,
        rng=[capture_rng_state(device)],
    )
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        **position,
        "resolution": stage.resolution,
        "alpha_x1000": stage.alpha_x1000(position["stage_images"]),
        **state,
        "options": options.to_json(),
        "schedule": json.dumps(schedule.to_dict()),
    }
    write_checkpoint(ckpt, path)


def _position(iteration: int, stage: Stage, seen: int, images: int) -> dict[str, int]:
    return {"iteration": iteration, "stage": stage.index, "stage_images": seen, "images": images}


@torch.no_grad()
def _snapshot(run_dir: Path, tag: str, nets: _Networks, dataset: Dataset, snap_z: torch.Tensor) -> None:
    """Save samples of the EMA decoder, 8 real images and their reconstructions as one grid."""
    device = next(nets.G_ema.parameters()).device
    with torch.random.fork_rng(devices=[]):
        nets.E.eval()
        real = torch.stack([dataset[i][0] for i in range(min(8, len(dataset)))]).to(device)
        recon = nets.G_ema(nets.E(real)[0]).float()
        nets.E.train()
        grid = torch.cat([nets.G_ema(snap_z.to(device)).float(), real, recon]).cpu()
    (run_dir / "snapshots").mkdir(exist_ok=True)
    upscale = max(1, 64 // real.shape[-1])
    save_grid(grid, run_dir / "snapshots" / f"{tag}.png", nrow=8, upscale=upscale)


# ------------------------------------------------------------------------------------------ the loop


def progressive_training_loop(
    options: TrainingOptions,  # validated options; image_size is the final resolution, architecture "progan"
    schedule: ProgressiveSchedule,  # stage lengths and batch sizes
    run_dir: str | Path,  # checkpoint, stats, snapshots, options and stage exports go here (created)
    *,
    device: str | torch.device = "cpu",  # "cpu", "cuda", "cuda:1"
    resume: bool = True,  # continue from run_dir/checkpoint.pt when it exists
    stop_after: int | None = None,  # stop (with a checkpoint) after this many iterations in all
    export_stages: bool = True,  # write run_dir/stages/<R>x<R>/ (release format) at the end of every stage
    progress: bool = True,  # a rich progress bar per stage, on stderr
    progress_fn: Callable[[int, dict[str, float]], None] | None = None,  # called after every log interval
    return_networks: bool = False,  # add the live networks to the summary (for notebooks and tests)
    handle_signals: bool = True,  # Ctrl-C / SIGTERM stop the run with a checkpoint (stop_request.py)
) -> dict[str, Any]:
    """Grow and train a DC-VAE from ``schedule.start_resolution`` to ``options.image_size``.

    Returns a summary: iteration, stage resolution, images shown, the last logged stats, the run folder,
    whether the schedule is finished, the stage exports written, and ``stopped_by``: the signal that stopped it
    early, or None (as in ``training_loop``).
    """
    o = check_progressive_options(options)
    stages = schedule.stages(o)
    device = torch.device(device)
    run_dir = Path(run_dir)
    ckpt_path = run_dir / CHECKPOINT_NAME

    # ------------------------------------------------------------------ position, queues, resume state
    torch.manual_seed(o.seed)
    stage_index = iteration = images = seen = 0  # seen: images of the current stage
    state: dict[str, Any] | None = None
    if resume and ckpt_path.is_file():
        state = load_checkpoint(ckpt_path)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{ckpt_path} is not a progressive checkpoint")
        if json.loads(state["schedule"]) != schedule.to_dict():
            raise OptionsError(f"{ckpt_path} was written with another schedule; use a new run folder")
        # `compile`, refused now, was once accepted and ignored here: a run saved with it trained without it
        saved = {k: v for k, v in json.loads(state["options"]).items() if k != "compile"}
        check_resume_options(json.dumps(saved), o, ckpt_path)  # before anything is written
        stage_index, iteration = int(state["stage"]), int(state["iteration"])
        images, seen = int(state["images"]), int(state["stage_images"])
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / OPTIONS_NAME, o.to_json())
    atomic_write_text(run_dir / SCHEDULE_NAME, json.dumps(schedule.to_dict(), indent=2) + "\n")
    queues = make_feature_queues(o, device)
    autocast = training_autocast(device, o.amp)
    scaler = torch.amp.GradScaler(device.type, enabled=o.amp == "fp16")
    snap_z = torch.randn(32, o.latent_dim, generator=torch.Generator().manual_seed(o.seed)).clamp(-1, 1)
    log = StatsLog(run_dir / STATS_NAME, after=iteration)
    if log.dropped:
        print(dropped_lines_note(log.dropped, iteration), file=sys.stderr)
    exported: list[str] = []
    last: dict[str, float] = {}
    nets: _Networks | None = None
    halted = stop_after is not None and iteration >= stop_after
    bar: TrainingProgress | None = None

    with StopRequest(enabled=handle_signals) as stop:  # Ctrl-C / SIGTERM: checkpoint, then return
        try:  # a stop requested between stages takes effect after the end-of-stage checkpoint
            while stage_index < len(stages) and not halted and not stop.requested:
                stage = stages[stage_index]
                so = stage_options(o, stage)
                config = so.model_config()

                # ------------------------------------------------------------------ networks of this stage
                nets = _build_networks(config, so, device) if nets is None else _grow_networks(nets, config, so, device)
                if progress and seen < stage.total_images:  # a bar per stage (a stage's iterations cost more)
                    first = sum(earlier.iterations for earlier in stages[:stage_index])
                    stage_end = first + stage.iterations
                    if stop_after is not None:
                        stage_end = min(stage_end, stop_after)
                    label = f"{o.preset} {stage.resolution}x{stage.resolution} (stage {stage_index + 1}/{len(stages)})"
                    if bar is None:
                        bar = TrainingProgress(label, first, stage_end, iteration)
                    else:
                        bar.restart(label, first, stage_end, iteration)
                E, G, G_ema, D, D_M = nets.E, nets.G, nets.G_ema, nets.D, nets.D_M

                opt_E = torch.optim.Adam(E.parameters(), lr=o.lr, betas=o.betas)
                opt_G = torch.optim.Adam(G.parameters(), lr=schedule.decoder_lr or o.lr, betas=o.betas)
                opt_D = torch.optim.Adam(D.parameters(), lr=o.lr, betas=o.betas) if D is not None else None
                dataset = make_progressive_dataset(o.dataset, "train", stage.resolution, o.channels, o.data_root)
                loader = InfiniteLoader(dataset, stage.batch_size, o.seed + stage.index, num_workers=o.num_workers)
                optimizers = {"opt_E": opt_E, "opt_G": opt_G, "opt_D": opt_D}
                if state is not None:
                    restore_trainer_state(
                        state, networks=nets.named(), optimizers=optimizers, scaler=scaler, queues=queues,
                        loader=loader, rank=0, device=device,
                    )
                    state = None
                objective = DCVAELoss(so, E, G, D, D_M, queues, autocast, scale=scaler.scale)
                logit_path = logit_path_parameters(D) if D is not None else None  # this stage's parameters

                ckpt_parts = (stage, nets, optimizers, scaler, queues, loader)

                # ------------------------------------------------------------------ the iterations of this stage
                while seen < stage.total_images:
                    alpha = stage.alpha_x1000(seen) / 1000
                    nets.set_alpha(alpha)
                    real = fade_reals(next(loader)[0].to(device, non_blocking=True), alpha)
                    ids = loader.last_indices.to(device)
                    step = training_iteration(
                        objective, o, real, iteration, opt_E, opt_G, opt_D, scaler, queues, G_ema, G, ids=ids,
                        logit_path=logit_path,
                    )
                    iteration += 1
                    seen += stage.batch_size
                    images += stage.batch_size

                    # --- bookkeeping
                    log.add(step, stage.batch_size)
                    stage_done = seen >= stage.total_images
                    if iteration % o.log_every == 0 or stage_done:
                        position = {
                            "Progress/resolution": float(stage.resolution),
                            "Progress/alpha": alpha,
                            "Progress/kimg": images / 1000,
                        }
                        last = log.flush(iteration, position)
                        if bar is not None:
                            bar.log(iteration, last)
                        if progress_fn is not None:
                            progress_fn(iteration, last)
                    elif bar is not None:
                        bar.advance(iteration)
                    if iteration % o.snapshot_every == 0:
                        _snapshot(run_dir, f"r{stage.resolution}-{iteration:07d}", nets, dataset, snap_z)
                    out_of_time = o.max_minutes is not None and log.minutes() >= o.max_minutes
                    halted = out_of_time or stop.requested or (stop_after is not None and iteration >= stop_after)
                    if halted or iteration % o.checkpoint_every == 0:
                        _save_checkpoint(
                            ckpt_path, _position(iteration, stage, seen, images), *ckpt_parts, o, schedule, device
                        )
                    if halted:
                        break
                if halted and seen < stage.total_images:
                    break

                # ------------------------------------------------------------------ end of the stage
                nets.set_alpha(1.0)
                if export_stages:
                    folder = run_dir / STAGES_DIR / f"{stage.resolution}x{stage.resolution}"
                    save_pretrained(release_model(o, stage, 1000, E.state_dict(), G_ema.state_dict()), folder)
                    exported.append(str(folder))
                _snapshot(run_dir, f"r{stage.resolution}-final", nets, dataset, snap_z)
                _save_checkpoint(
                    ckpt_path, _position(iteration, stage, seen, images), *ckpt_parts, o, schedule, device
                )  # a resumed run grows from here
                stage_index, seen = stage_index + 1, 0
        finally:
            if bar is not None:
                bar.stop()
            log.close()

    summary: dict[str, Any] = {
        "iteration": iteration,
        "resolution": stages[min(stage_index, len(stages) - 1)].resolution,
        "images": images,
        "stats": last,
        "run_dir": str(run_dir),
        "finished": stage_index >= len(stages),
        "exported": exported,
        "stopped_by": stop.signal_name if stage_index < len(stages) else None,
    }
    if return_networks and nets is not None:
        summary["networks"] = nets.named()
    return summary
