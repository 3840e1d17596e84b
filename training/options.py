"""TrainingOptions: every knob of a training run, typed, defaulted and validated (no global config)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

OBJECTIVES = ("dcvae", "dcvae-no-instance", "dcvae-no-set", "vae", "vaegan", "gan")
"""dcvae: instance (contrastive) + set (adversarial) + KL, the paper's model.
dcvae-no-instance / dcvae-no-set: the ablations of supplementary Figure 3.
vae: pixel reconstruction + KL. vaegan: reconstruction (pixel or discriminator-feature space) + adversarial
+ KL. gan: adversarial only, no encoder trained (the pure-GAN row of Table 2)."""


class OptionsError(ValueError):
    """A training option is out of range or unknown; the message names it."""


@dataclass
class TrainingOptions:
    # --- what this run reproduces
    preset: str = "custom"  # preset name, recorded in the run and the exported config
    reproduces: str | None = None  # manifest name of the checkpoint this preset reproduces
    description: str = ""
    # --- data
    dataset: str = "fashion-mnist"  # training.data.make_dataset name
    data_root: str | None = None  # where the data lives, when not at its default place
    image_size: int = 32
    channels: int = 1
    content_size: int | None = 28  # image content inside image_size (28 for padded MNIST-family data)
    # --- networks
    architecture: str = "autogan32"
    architecture_args: dict[str, int] = field(default_factory=lambda: {"gf_dim": 256, "df_dim": 128})
    latent_dim: int = 128
    # --- objective
    objective: str = "dcvae"  # one of OBJECTIVES
    kl_weight: float = 1e-6  # KL summed over batch and dims, times this (the official weighting)
    # a geometric ramp of the KL weight: kl_weight through iteration kl_ramp_start, kl_ramp_to from kl_ramp_end on,
    # by absolute iteration so a resumed run continues it exactly; None keeps kl_weight
    kl_ramp_to: float | None = None
    kl_ramp_start: int = 0
    kl_ramp_end: int = 0
    recon_kind: str = "l2"  # l1 | l2, for vae / vaegan
    recon_space: str = "pixel"  # pixel | feature (discriminator features), for vaegan
    recon_weight: float = 1.0
    queue_size: int = 8192  # negatives per contrastive layer
    temperature: float = 0.07
    contrastive_layers: tuple[str, ...] = ("b1", "final")
    momentum: float = 0.999  # momentum (key) discriminator
    # the contrastive phase's step on the discriminator parameters its real/fake logits also read (the trunk and
    # the pooled feature "final"), as a multiple of lr; 1 is the official step, 0 leaves them where the
    # discriminator phase put them. Adam's moments take the phase's gradient either way, as with a lower lr
    contrastive_trunk_lr_scale: float = 1.0
    # separate: prior samples and reconstructions go through the decoder in separate calls (the official
    # code), so its BatchNorm normalises each kind on its own batch statistics while its running statistics
    # average both; joint: one call on both kinds, so training normalises as evaluation does
    decoder_batch: str = "separate"
    # the decoder's prior draws in training, N(0, I) clamped elementwise to [-prior_clamp, prior_clamp]; None
    # leaves them unclamped (the official code), while its sampling protocol clamps at 1 at evaluation
    prior_clamp: float | None = None
    # the prior samples' share of the two fake terms in both hinge losses (reconstructions get the rest); 0.5
    # weighs them equally (the official code)
    prior_sample_weight: float = 0.5
    # real images shifted by up to this many whole pixels in each direction, a fresh shift per image and
    # iteration (training.data.augment); 0: none, the official recipe
    translate: int = 0
    # train the encoder alone: the decoder a release ships (the EMA copy, in evaluation mode) and the discriminator
    # stay fixed, and the encoder minimises its own terms of the objective unchanged against them (no
    # discriminator phase, no decoder step, no EMA update; the contrastive keys' momentum copy still follows the
    # fixed discriminator, as in every contrastive phase). For fitting an encoder to a finished decoder: the
    # decoder, and so every prior sample, is exactly the source's
    encoder_only: bool = False
    # --- optimisation
    batch_size: int = 64  # real images per iteration (per process)
    gen_batch_size: int = 128  # prior samples in the generator step
    lr: float = 2e-4
    betas: tuple[float, float] = (0.0, 0.9)
    n_critic: int = 5  # encoder/decoder step every n_critic-th iteration
    ema: float = 0.999  # decoder EMA
    total_iterations: int = 100_000
    seed: int = 123
    # --- engineering
    amp: str = "none"  # none | bf16 | fp16 (autocast; fp16 uses a grad scaler on CUDA)
    channels_last: bool = False
    compile: bool = False
    num_workers: int = 0
    # --- bookkeeping
    log_every: int = 50
    snapshot_every: int = 1000  # sample / reconstruction grids
    checkpoint_every: int = 1000
    network_snapshot_every: int = 0  # also keep the release-format model every this many iterations (0: never)
    max_minutes: float | None = None  # stop (with a checkpoint) after this much wall time

    def validate(self) -> TrainingOptions:
        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise OptionsError(f"{name}={getattr(self, name)!r}: {what}")

        need(self.objective in OBJECTIVES, "objective", f"must be one of {', '.join(OBJECTIVES)}")
        need(self.channels in (1, 3), "channels", "must be 1 or 3")
        need(self.latent_dim >= 1, "latent_dim", "must be positive")
        need(self.recon_kind in ("l1", "l2"), "recon_kind", "must be l1 or l2")
        need(self.recon_space in ("pixel", "feature"), "recon_space", "must be pixel or feature")
        need(_finite_number(self.kl_weight) and self.kl_weight >= 0, "kl_weight", "must be a finite number >= 0")
        if self.kl_ramp_to is None:
            for name in ("kl_ramp_start", "kl_ramp_end"):
                need(
                    type(getattr(self, name)) is int and getattr(self, name) == 0,
                    name,
                    "is only read with kl_ramp_to (the weight a ramp ends at): set kl_ramp_to, or leave "
                    "kl_ramp_start and kl_ramp_end at 0",
                )
        else:
            need(
                _finite_number(self.kl_ramp_to) and self.kl_ramp_to > 0,
                "kl_ramp_to",
                "must be a positive finite number (the KL weight the ramp ends at), or null for no ramp",
            )
            need(self.trains_encoder, "kl_ramp_to", f"objective={self.objective!r} trains no encoder, so has no KL")
            need(self.kl_weight > 0, "kl_weight", "must be > 0 for a geometric ramp to kl_ramp_to")
            need(
                type(self.kl_ramp_start) is int and self.kl_ramp_start >= 0,
                "kl_ramp_start",
                "must be an iteration >= 0",
            )
            need(
                type(self.kl_ramp_end) is int and self.kl_ramp_end > self.kl_ramp_start,
                "kl_ramp_end",
                f"must be an iteration after kl_ramp_start={self.kl_ramp_start}",
            )
        need(self.decoder_batch in ("separate", "joint"), "decoder_batch", "must be separate or joint")
        need(
            self.decoder_batch == "separate" or self.decodes_both_kinds,
            "decoder_batch",
            f"joint needs an objective that decodes both prior samples and reconstructions (dcvae, "
            f"dcvae-no-instance, vaegan), not objective={self.objective!r}",
        )
        need(
            self.prior_clamp is None or (type(self.prior_clamp) in (int, float) and self.prior_clamp > 0),
            "prior_clamp",
            "must be a positive number, or null for unclamped draws",
        )
        need(
            self.prior_clamp is None or self.uses_adversarial,
            "prior_clamp",
            f"objective={self.objective!r} decodes no prior draws in training",
        )
        need(
            _finite_number(self.prior_sample_weight) and 0 < self.prior_sample_weight < 1,
            "prior_sample_weight",
            "must be a number strictly between 0 and 1 (0.5: prior samples and reconstructions weigh the same)",
        )
        need(
            self.prior_sample_weight == 0.5 or self.decodes_both_kinds,
            "prior_sample_weight",
            f"objective={self.objective!r} has no pair of fake terms to weigh (dcvae, dcvae-no-instance or vaegan "
            f"have)",
        )
        need(
            type(self.translate) is int and 0 <= self.translate < self.image_size // 2,
            "translate",
            f"must be a whole number of pixels from 0 (no augmentation) to {self.image_size // 2 - 1}",
        )
        need(type(self.encoder_only) is bool, "encoder_only", "must be true or false")
        need(
            not self.encoder_only or self.trains_encoder,
            "encoder_only",
            f"objective={self.objective!r} trains no encoder",
        )
        need(self.queue_size >= 1, "queue_size", "must be at least 1")
        need(self.temperature > 0, "temperature", "must be > 0")
        need(
            set(self.contrastive_layers) <= {"b1", "final"} and len(self.contrastive_layers) > 0,
            "contrastive_layers",
            "must be a non-empty subset of b1, final",
        )
        need(
            _finite_number(self.contrastive_trunk_lr_scale) and self.contrastive_trunk_lr_scale >= 0,
            "contrastive_trunk_lr_scale",
            "must be a finite number >= 0 (1: the official step; 0: the contrastive phase does not step the "
            "discriminator's trunk and final feature)",
        )
        need(
            self.contrastive_trunk_lr_scale == 1 or self.uses_contrastive,
            "contrastive_trunk_lr_scale",
            f"objective={self.objective!r} has no contrastive phase (dcvae and dcvae-no-set have)",
        )
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(0 <= self.ema < 1, "ema", "must be in [0, 1)")
        need(self.batch_size >= 2, "batch_size", "must be at least 2")
        need(self.gen_batch_size >= 1, "gen_batch_size", "must be at least 1")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.n_critic >= 1, "n_critic", "must be at least 1")
        need(self.total_iterations >= 1, "total_iterations", "must be at least 1")
        need(self.amp in ("none", "bf16", "fp16"), "amp", "must be none, bf16 or fp16")
        for name in ("log_every", "snapshot_every", "checkpoint_every"):
            need(getattr(self, name) >= 1, name, "must be at least 1")
        need(self.network_snapshot_every >= 0, "network_snapshot_every", "must be >= 0 (0: no network snapshots)")
        from dcvae_tools.errors import ConfigError

        try:
            self.model_config()
        except ConfigError as err:
            raise OptionsError(str(err)) from err
        return self

    def check_time_limit(self) -> TrainingOptions:
        """Refuse a ``max_minutes`` that is not a positive number (checked where a run starts: a checkpoint's saved
        options are read whatever limit it last ran under)."""
        if not (self.max_minutes is None or (_finite_number(self.max_minutes) and self.max_minutes > 0)):
            raise OptionsError(f"max_minutes={self.max_minutes!r}: must be a positive number of minutes (e.g. 120), "
                               "or null for no time limit")
        return self

    def model_config(self, metrics: dict[str, Any] | None = None):
        """The release config this run's checkpoint will carry."""
        from dcvae_tools.config import ModelConfig

        return ModelConfig(
            architecture=self.architecture,
            architecture_args=dict(self.architecture_args),
            image_size=self.image_size,
            channels=self.channels,
            latent_dim=self.latent_dim,
            content_size=self.content_size,
            dataset=self.dataset,
            preset=self.preset,
            metrics=dict(metrics or {}),
            description=self.description or None,
        )

    def kl_weight_at(self, iteration: int) -> float:
        """The KL weight of iteration ``iteration`` (0-based: the number of iterations trained before it).

        ``kl_weight`` through ``kl_ramp_start``, then geometrically to ``kl_ramp_to``, reached at ``kl_ramp_end``
        and kept after; ``kl_weight`` throughout without a ramp.
        """
        if self.kl_ramp_to is None or iteration <= self.kl_ramp_start:
            return float(self.kl_weight)
        if iteration >= self.kl_ramp_end:
            return float(self.kl_ramp_to)
        progress = (iteration - self.kl_ramp_start) / (self.kl_ramp_end - self.kl_ramp_start)
        return float(self.kl_weight * (self.kl_ramp_to / self.kl_weight) ** progress)

    @property
    def trains_encoder(self) -> bool:
        return self.objective != "gan"

    @property
    def uses_adversarial(self) -> bool:
        return self.objective in ("dcvae", "dcvae-no-instance", "vaegan", "gan")

    @property
    def decodes_both_kinds(self) -> bool:
        """Whether training decodes both prior draws and reconstructions, so the discriminator scores both."""
        return self.trains_encoder and self.uses_adversarial

    @property
    def uses_contrastive(self) -> bool:
        return self.objective in ("dcvae", "dcvae-no-set")

    @property
    def uses_discriminator(self) -> bool:
        return self.uses_adversarial or self.uses_contrastive

    @property
    def generator_phases(self) -> int:
        """Encoder/decoder updates per n_critic-th iteration: adversarial/reconstruction, contrastive."""
        main = self.uses_adversarial or self.objective in ("vae", "vaegan")
        return int(main) + int(self.uses_contrastive)

    def budget(self) -> dict[str, int]:
        """What a run of these options spends: the unit in which baselines are made comparable.

        Two runs have the same budget when they make the same number of encoder/decoder updates and see
        the same number of real images (per process); discriminator updates follow from the objective.
        """
        g_iterations = -(-self.total_iterations // self.n_critic)  # iterations 0, n_critic, 2 n_critic, ...
        return {
            "encoder_decoder_updates": g_iterations * self.generator_phases,
            "images_seen": self.total_iterations * self.batch_size,
        }

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["contrastive_layers"] = list(self.contrastive_layers)
        data["betas"] = list(self.betas)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingOptions:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise OptionsError(f"unknown training option(s): {', '.join(unknown)}")
        data = dict(data)
        if "contrastive_layers" in data:
            data["contrastive_layers"] = tuple(data["contrastive_layers"])
        if "betas" in data:
            data["betas"] = tuple(data["betas"])
        return cls(**data).validate()

    def override(self, **changes: Any) -> TrainingOptions:
        """A copy with ``changes`` applied, each type-checked against the field's current value."""
        current = self.to_dict()
        for key, value in changes.items():
            if key not in current:
                raise OptionsError(f"unknown training option {key!r}")
            old = current[key]
            if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if isinstance(old, tuple | list) and isinstance(value, tuple | list):
                value = list(value)
            elif old is not None and value is not None and not isinstance(value, type(old)):
                raise OptionsError(f"{key} must be {type(old).__name__}, got {value!r}")
            current[key] = value
        return TrainingOptions.from_dict(current)


def _finite_number(value: Any) -> bool:
    """A real int or float (not a bool, not a string from a hand-edited JSON) that is finite."""
    return type(value) in (int, float) and math.isfinite(value)


def parse_override(text: str) -> tuple[str, Any]:
    """``"lr=1e-4"`` / ``"architecture_args={\\"gf_dim\\": 64}"`` -> (key, JSON-parsed value or string)."""
    if "=" not in text:
        raise OptionsError(f"cannot read override {text!r}: write KEY=VALUE, e.g. lr=1e-4")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value
