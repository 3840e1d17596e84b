"""The DC-VAE objective by phase (SG2A style): the loop calls ``accumulate_gradients(phase, ...)``.

Phases and what they back-propagate (the official update order, docs/design.md):
- ``"D"``    (every iteration): hinge loss on real vs. sampled and reconstructed images -> discriminator.
- ``"Gmain"`` (every n_critic-th): adversarial hinge (set level) and/or reconstruction, plus KL
  -> encoder and decoder.
- ``"Gcon"``  (same iteration, fresh reconstruction): InfoNCE between the momentum discriminator's
  features of real images (keys) and the discriminator's features of their reconstructions
  (queries), negatives from per-layer queues (instance level), plus KL -> encoder, decoder and
  discriminator (trunk and contrastive heads).
With ``encoder_only`` the loop skips ``"D"`` and steps only the encoder: the decoder and discriminator are fixed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .loss import (
    FeatureQueue,
    feature_reconstruction_loss,
    hinge_d_loss,
    hinge_g_loss,
    info_nce,
    kl_divergence,
    pixel_reconstruction_loss,
)
from .options import TrainingOptions


@contextlib.contextmanager
def _frozen(module: nn.Module | None) -> Iterator[None]:
    """Parameters of ``module`` take no gradient inside the block (only the inputs' gradient is needed)."""
    if module is None:
        yield
        return
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def training_precision(
    device: torch.device, amp: str, native_bfloat16: bool | None = None
) -> tuple[str, str | None]:
    """The autocast mode a run on ``device`` trains in for the requested ``amp``, and a note when they differ.

    bfloat16 autocast is the CPU presets' fast path only where the CPU computes bfloat16 natively (AVX-512 BF16
    or AMX). Elsewhere PyTorch emulates it, and a 3x3 convolution's forward and backward ran 17x slower than in
    float32 (AVX2 AMD EPYC, torch 2.14.1), so such a CPU trains in float32 instead; the run's options keep
    the request, so a resume on a CPU that has bfloat16 uses it again. ``native_bfloat16`` overrides the
    detection of this CPU's.
    """
    from dcvae_tools.fast import cpu_has_native_bfloat16

    if native_bfloat16 is None:
        native_bfloat16 = cpu_has_native_bfloat16()
    if amp == "bf16" and device.type == "cpu" and not native_bfloat16:
        capability = torch.backends.cpu.get_cpu_capability()
        return "none", (
            f"amp=bf16: this CPU ({capability}) has no native bfloat16 arithmetic (AVX-512 BF16 or AMX), where "
            "bfloat16 autocast is many times slower than float32, so this run trains in float32 "
            "(--set amp=none says so up front)"
        )
    return amp, None


def training_autocast(
    device: torch.device, amp: str, announce: bool = True
) -> Callable[[], contextlib.AbstractContextManager]:
    """The autocast factory a training loop uses for the requested ``amp`` (:func:`training_precision`'s mode),
    printing to stderr why it differs from the request when ``announce`` (the main process)."""
    amp, note = training_precision(device, amp)
    if announce and note is not None:
        print(note, file=sys.stderr)
    return autocast_factory(device, amp)


def autocast_factory(device: torch.device, amp: str) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of autocast contexts for ``amp`` (``"none"``, ``"bf16"`` or ``"fp16"``) on ``device``."""
    if amp == "none":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return lambda: torch.autocast(device.type, dtype=dtype)


@torch.no_grad()
def moving_average_(average: nn.Module, source: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * source``, parameter by parameter; buffers are copied.

    The decoder's EMA and the discriminator's momentum (MoCo key) copy are both this update.
    """
    for p_avg, p in zip(average.parameters(), source.parameters(), strict=True):
        p_avg.lerp_(p, 1.0 - decay)
    for b_avg, b in zip(average.buffers(), source.buffers(), strict=True):
        b_avg.copy_(b)


LOGIT_PATH_MODULES = ("trunk", "final")  # what a 32x32 or ProGAN discriminator's real/fake head reads through


def logit_path_parameters(discriminator: nn.Module) -> list[nn.Parameter]:
    """The discriminator's parameters that its real/fake logits read and the contrastive features share: the
    trunk and the pooled feature ``final`` (not the head itself, nor the block-1 contrastive head)."""
    return [p for name, p in discriminator.named_parameters() if name.split(".")[0] in LOGIT_PATH_MODULES]


@contextlib.contextmanager
def scaled_step(parameters: list[nn.Parameter], scale: float) -> Iterator[None]:
    """Scale by ``scale`` the change that the optimizer step inside the block makes to ``parameters``.

    For Adam this is the step at ``scale`` times the learning rate: the update is proportional to it, and the
    moments take the gradient unchanged.
    """
    if scale == 1 or not parameters:
        yield
        return
    before = [p.detach().clone() for p in parameters]
    yield
    with torch.no_grad():
        for p, p0 in zip(parameters, before, strict=True):
            p.copy_(torch.lerp(p0, p, scale))


class DCVAELoss:
    """Computes each phase's loss and calls backward; returns the scalars to log (``Loss/...`` names)."""

    def __init__(
        self,
        options: TrainingOptions,
        encoder: nn.Module,
        decoder: nn.Module,
        discriminator: nn.Module | None,
        momentum_discriminator: nn.Module | None,
        queues: dict[str, FeatureQueue],
        autocast: Callable[[], contextlib.AbstractContextManager],
        scale: Callable[[torch.Tensor], torch.Tensor] = lambda loss: loss,
    ) -> None:
        self.o = options
        self.E, self.G, self.D, self.D_M = encoder, decoder, discriminator, momentum_discriminator
        self.queues = queues
        self.autocast = autocast
        self.scale = scale  # the fp16 grad scaler's scale(), identity otherwise
        self.pending_keys: dict[str, torch.Tensor] = {}
        self.pending_ids: torch.Tensor | None = None
        self.iteration: int = 0  # the loop sets it before each iteration's phases; the KL schedule reads it

    @staticmethod
    def _raw(module: nn.Module) -> nn.Module:
        """The module without its DDP wrapper: used where gradients must not be all-reduced.

        Under ``compile`` the DDP wrapper sits inside torch.compile's (``_orig_mod``); both come off then.
        """
        inner = getattr(module, "_orig_mod", module)
        return inner.module if isinstance(inner, nn.parallel.DistributedDataParallel) else module

    def _prior_draws(self, n: int, device: torch.device) -> torch.Tensor:
        """N(0, I) draws for the decoder, clamped to [-prior_clamp, prior_clamp] when that is set."""
        z = torch.randn(n, self.o.latent_dim, device=device)
        return z if self.o.prior_clamp is None else z.clamp_(-self.o.prior_clamp, self.o.prior_clamp)

    def _kl(self, mu: torch.Tensor, logvar: torch.Tensor, stats: dict[str, float]) -> torch.Tensor:
        """The weighted KL term; logs it, and the weight when a ramp schedules it."""
        weight = self.o.kl_weight_at(self.iteration)
        kl = weight * kl_divergence(mu.float(), logvar.float())
        stats["Loss/G/kl"] = kl.item()
        if self.o.kl_ramp_to is not None:
            stats["Schedule/kl_weight"] = weight
        return kl

    def accumulate_gradients(
        self, phase: str, real: torch.Tensor, ids: torch.Tensor | None = None
    ) -> dict[str, float]:
        """Back-propagate one phase's loss into the parameters that loss uses; ``ids`` are the dataset
        indices of ``real`` (used by the contrastive phase to mask a query's own stale keys)."""
        if phase == "D":
            return self._phase_d(real)
        if phase == "Gmain":
            return self._phase_gmain(real)
        if phase == "Gcon":
            return self._phase_gcon(real, ids)
        raise ValueError(f"unknown phase {phase!r}")

    def _phase_d(self, real: torch.Tensor) -> dict[str, float]:
        n = len(real)
        with torch.no_grad(), self.autocast():
            latents = [self._prior_draws(n, real.device)]
            if self.o.trains_encoder:
                mu, logvar = self.E(real)
                latents.append(reparameterize(mu, logvar))
            if self.o.decoder_batch == "joint":
                fakes = list(self.G(torch.cat(latents)).split(n))
            else:
                fakes = [self.G(z) for z in latents]
        with self.autocast():
            logits, _ = self.D(torch.cat([real, *(f.to(real.dtype) for f in fakes)]), features=())
        logits = logits.float().split(n)
        loss = hinge_d_loss(
            logits[0], logits[1], logits[2] if len(logits) > 2 else None, self.o.prior_sample_weight
        )
        self.scale(loss).backward()
        return {
            "Loss/D/hinge": loss.item(),
            "D/real_logit": logits[0].mean().item(),
            "D/fake_logit": logits[1].mean().item(),
        }

    def _phase_gmain(self, real: torch.Tensor) -> dict[str, float]:
        o = self.o
        stats: dict[str, float] = {}
        recon = None
        with self.autocast():
            z_prior = self._prior_draws(o.gen_batch_size, real.device)
            if o.trains_encoder:
                mu, logvar = self.E(real)
                z_recon = reparameterize(mu, logvar)
                # decoder_batch=separate (the official code): prior samples and reconstructions go through
                # the decoder in separate calls, so its BatchNorm normalises each batch on its own
                # statistics. The first call bypasses DDP (one DDP forward per backward); its gradients
                # still reach the same parameters and are all-reduced with the second call's.
                if o.encoder_only:  # a fixed decoder: prior samples would carry no gradient to anything trained
                    recon = out = self.G(z_recon)
                elif o.decoder_batch == "joint":  # one call: both kinds share the batch statistics
                    out = self.G(torch.cat([z_prior, z_recon]))
                    recon = out[o.gen_batch_size :]
                else:
                    recon = self.G(z_recon)
                    out = torch.cat([self._raw(self.G)(z_prior), recon]) if o.uses_adversarial else recon
            else:
                out = self.G(z_prior)
        loss = torch.zeros((), device=real.device)
        # The discriminator only passes gradients back to the images here; its own weights are frozen so
        # no time goes into weight gradients that the next phase would throw away.
        D = self._raw(self.D)
        with _frozen(D):
            loss, stats = self._gmain_losses(real, out, recon, loss, stats)
            if o.trains_encoder:
                loss = loss + self._kl(mu, logvar, stats)
            self.scale(loss).backward()
        return stats

    def _gmain_losses(
        self, real: torch.Tensor, out: torch.Tensor, recon: torch.Tensor | None, loss: torch.Tensor, stats: dict
    ) -> tuple[torch.Tensor, dict[str, float]]:
        o, D = self.o, self._raw(self.D)
        if o.uses_adversarial:
            with self.autocast():
                logits, _ = D(out, features=())
            logits = logits.float()
            if o.encoder_only:  # only the reconstructions' term, at its weight in the full hinge loss
                g = (1.0 - o.prior_sample_weight) * hinge_g_loss(None, logits)
            else:
                g = hinge_g_loss(
                    logits[: o.gen_batch_size],
                    logits[o.gen_batch_size :] if o.trains_encoder else None,
                    o.prior_sample_weight,
                )
            loss = loss + g
            stats["Loss/G/hinge"] = g.item()
        if o.objective in ("vae", "vaegan"):
            if o.recon_space == "pixel":
                rec = pixel_reconstruction_loss(real.float(), recon.float(), o.recon_kind)
            else:
                with torch.no_grad(), self.autocast():
                    _, real_feats = D(real)
                with self.autocast():
                    _, rec_feats = D(recon)
                rec = feature_reconstruction_loss(
                    [f.float() for f in real_feats.values()],
                    [f.float() for f in rec_feats.values()],
                    o.recon_kind,
                )
            if o.objective == "vae":  # a proper ELBO: per-pixel error summed, like the summed KL
                rec = rec * real.numel()
            loss = loss + o.recon_weight * rec
            stats["Loss/G/recon"] = rec.item()
        return loss, stats

    @torch.no_grad()
    def update_momentum(self) -> None:
        """Key discriminator <- momentum * key + (1 - momentum) * discriminator (MoCo); buffers copied."""
        moving_average_(self.D_M, self._raw(self.D), self.o.momentum)

    def _phase_gcon(self, real: torch.Tensor, ids: torch.Tensor | None) -> dict[str, float]:
        o = self.o
        self.update_momentum()
        with torch.no_grad(), self.autocast():
            _, key_feats = self.D_M(real, features=o.contrastive_layers, logits=False)
        keys = {layer: F.normalize(key_feats[layer].float(), dim=1) for layer in o.contrastive_layers}
        with self.autocast():
            mu, logvar = self.E(real)
            z_recon = reparameterize(mu, logvar)
            if o.decoder_batch == "joint" and not o.encoder_only:
                # prior samples in the same call only so the reconstructions are normalised as in the other
                # phases (and at evaluation); their images are dropped. A fixed decoder (encoder_only) normalises
                # by its running statistics whatever else is in the batch
                z_prior = self._prior_draws(o.gen_batch_size, real.device)
                recon = self.G(torch.cat([z_prior, z_recon]))[o.gen_batch_size :]
            else:
                recon = self.G(z_recon)
            # no real/fake logits: the adversarial head takes no part (and no optimizer step) in this phase
            _, query_feats = self.D(recon, features=o.contrastive_layers, logits=False)
        stats: dict[str, float] = {}
        loss = torch.zeros((), device=real.device)
        weight = 1.0 / len(o.contrastive_layers)
        for layer in o.contrastive_layers:
            q = F.normalize(query_feats[layer].float(), dim=1)
            queue = self.queues[layer]
            nce = info_nce(q, keys[layer], queue.features, o.temperature, query_ids=ids, queue_ids=queue.ids)
            loss = loss + weight * nce
            stats[f"Loss/contrastive/{layer}"] = nce.item()
        kl = self._kl(mu, logvar, stats)
        self.scale(loss + kl).backward()
        self.pending_keys = keys  # enqueued by the loop after the step, gathered across ranks
        self.pending_ids = ids
        return stats
