"""The DCVAE model: encode, decode, reconstruct, sample, interpolate, mix and edit.

Inputs that are images may be PIL images, file paths, numpy arrays or tensors [N, C, H, W] in [-1, 1]
(see :func:`dcvae_tools.images.to_tensor`); they are converted to the model's channels and size.
Inputs that are latents are tensors [D] or [N, D] with D the model's latent size.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from . import images as image_io
from . import latent as latent_ops
from .arguments import at_least_one, is_real_number
from .config import ModelConfig
from .errors import DCVAEError, ImageError, LatentError
from .fast import InferenceEngine
from .latent_specs import FLOAT32_MAX, check_attribute_name
from .networks import build_network

if TYPE_CHECKING:
    from .editing.stats import LatentStats
    from .prior import LatentPrior

logger = logging.getLogger("dcvae_tools")

ImagesLike = Any
"""PIL image, path, numpy array, tensor, or a list of those."""


@dataclass(eq=False)  # identity equality and hash: usable as a key of ``edit``'s mapping
class AttributeVector:
    """A named latent direction: mean latent of images with the attribute minus mean of those without.

    Attributes:
        name: short identifier, e.g. ``"long_sleeves"``.
        direction: the [D] vector added to latents (times a strength) to edit.
        num_positive, num_negative: how many examples each mean was taken over (the paper uses 20/20).
        normalized: whether ``direction`` was scaled to unit length.
        metadata: JSON-able provenance (data split, indices of the images used, how it was measured).
    """

    name: str
    direction: torch.Tensor
    num_positive: int
    num_negative: int
    normalized: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the [D] direction in full would flood a console
        direction = self.direction
        if isinstance(direction, torch.Tensor) and direction.ndim >= 1:
            shown = f"dim={direction.shape[-1]}, norm={float(direction.float().norm()):.4g}"
        else:
            shown = f"direction={direction!r:.40}"
        return (
            f"AttributeVector(name={self.name!r}, {shown}, num_positive={self.num_positive}, "
            f"num_negative={self.num_negative}, normalized={self.normalized})"
        )


def _as_weights(network: Any, run: Any, dtype: torch.dtype, x: torch.Tensor) -> torch.Tensor:
    """``x`` in the dtype the plain ``network`` can take it in.

    After ``model.to(torch.bfloat16)`` (or ``.half()``) a backbone without a fast form (or with ``fast=False``)
    holds low-precision weights; in float32 compute no autocast runs, and a float32 input would not match them,
    so such a network computes in its weights' precision. Fast forms and autocast need no cast.
    """
    if run is not None or dtype != torch.float32 or not isinstance(network, nn.Module):
        return x
    weight = next(network.parameters(), None)
    if weight is None or not weight.is_floating_point() or weight.dtype == x.dtype:
        return x
    return x.to(weight.dtype)


class DCVAE(nn.Module):
    """A DC-VAE's encoder and decoder with the latent-space operations of the paper.

    Build one with :func:`dcvae_tools.load_model`; ``DCVAE(config)`` gives randomly initialised
    networks. The model starts on the CPU in eval mode; ``model.to("cuda")`` moves it as usual and
    ``model.compute_dtype`` (float32, bfloat16 or float16; ``load_model(..., dtype=...)``) selects the
    arithmetic precision. ``model.to(torch.bfloat16)`` rounds the stored weights; encode and decode still return
    float32. The fast inference form (autogan32) computes in ``compute_dtype`` from the rounded weights; a backbone
    without one (or ``fast=False``) computes in the weights' precision when ``compute_dtype`` is float32.

    Images go in as PIL images, file paths, numpy arrays (uint8 0..255 or float [0, 1]) or tensors
    ``[N, C, H, W]`` (float in [-1, 1], uint8 0..255), one or a list; images come out as float32 tensors
    ``[N, C, S, S]`` in [-1, 1] (``model.to_pil`` for PIL images). Latents are ``[N, D]`` tensors. Notes on
    converted inputs (resized, made grey) are logged at INFO on the ``dcvae_tools`` logger.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = build_network(config, "encoder")
        self.decoder = build_network(config, "decoder")
        self.attributes: dict[str, AttributeVector] = {}
        # mean/covariance of the training latents and held-out ranges (latent_stats.safetensors), or None
        self.latent_stats: LatentStats | None = None
        # a Gaussian mixture fitted to the training latents (latent_prior.safetensors), or None: where samples come from
        self.latent_prior: LatentPrior | None = None
        self._compute_dtype = torch.float32
        self.batch_size = 64
        # how _run runs the networks: folded fast forms, channels-last, CPU micro-batches (see dcvae_tools.fast)
        self._inference = InferenceEngine()
        self.eval()

    # ------------------------------------------------------------------ plumbing

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def compute_dtype(self) -> torch.dtype:
        """The arithmetic precision of encode/decode: torch.float32 (default), bfloat16 or float16."""
        return self.__dict__.get("_compute_dtype", torch.float32)

    @compute_dtype.setter
    def compute_dtype(self, dtype: torch.dtype | str) -> None:
        from .fast import resolve_dtype

        self._compute_dtype = resolve_dtype(dtype)  # "bfloat16", "bf16", torch.bfloat16, ...

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def weights_sha256(self) -> str:
        """sha256 over the networks' parameters and buffers (names and bytes): equal for two models exactly
        when their weights are, values and dtypes (``model.half()`` changes it). Latents and attribute files
        record it, so that files made by other weights (another checkpoint, or the same folder retrained) are
        told apart whatever the model is called."""
        digest = hashlib.sha256()
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return digest.hexdigest()

    def _batches(self, x: torch.Tensor, batch_size: int | None) -> Iterator[torch.Tensor]:
        size = at_least_one(self.batch_size if batch_size is None else batch_size, "batch_size")
        for start in range(0, len(x), size):
            yield x[start : start + size].to(self.device, non_blocking=True)

    def _autocast(self, dtype: torch.dtype) -> contextlib.AbstractContextManager:
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _run(self, fn: Callable[[torch.Tensor], Any], x: torch.Tensor) -> Any:
        """Run ``fn`` in the compute dtype; redo in float32 if half precision gave inf/NaN.

        The encoder and decoder run in their fast inference form where the backbone has one (folded
        weights, channels-last, CPU micro-batches; see :mod:`dcvae_tools.fast`); float32 results equal the
        plain networks' up to float rounding. Other callables run as given.
        """
        engine: InferenceEngine | None = self.__dict__.get("_inference")
        if engine is None:  # a model unpickled from an older version
            engine = self.__dict__["_inference"] = InferenceEngine()
        dtype = self.compute_dtype
        kind = "encoder" if fn is self.encoder else "decoder" if fn is self.decoder else None
        run, native = engine.runner(fn, self.config.architecture, kind, dtype)
        with torch.inference_mode():
            with contextlib.nullcontext() if native else self._autocast(dtype):
                inputs = _as_weights(fn, run, dtype, x)
                out = engine.forward(fn if run is None else run, inputs)
            outs = out if isinstance(out, tuple) else (out,)
            computed = dtype if dtype != torch.float32 else inputs.dtype  # half weights compute in half
            low_precision = computed in (torch.float16, torch.bfloat16)
            if low_precision and not all(torch.isfinite(o).all() for o in outs):
                run, _ = engine.runner(fn, self.config.architecture, kind, torch.float32)
                retry = _as_weights(fn, run, torch.float32, x)
                can_retry = retry.dtype == torch.float32  # not with low-precision weights and no fast form
                warnings.warn(
                    f"{computed} gave non-finite values; recomputing this batch in float32" if can_retry else
                    f"{computed} gave non-finite values, and this network's weights are {retry.dtype}, so it cannot "
                    "recompute in float32; call model.float() first",
                    RuntimeWarning,
                    stacklevel=3,
                )
                if can_retry:
                    out = engine.forward(fn if run is None else run, retry)
                    outs = out if isinstance(out, tuple) else (out,)
            result = tuple(o.float() for o in outs)
        return result if isinstance(out, tuple) else result[0]

    def _is_latent(self, x: Any) -> bool:
        return isinstance(x, torch.Tensor) and x.ndim in (1, 2) and x.shape[-1] == self.latent_dim

    def _is_model_batch(self, x: Any) -> bool:
        """Whether ``x`` is already a float batch in this model's format [N, C, S, S] (needs no conversion)."""
        c = self.config
        return (
            isinstance(x, torch.Tensor)
            and x.ndim == 4
            and tuple(x.shape[1:]) == (c.channels, c.image_size, c.image_size)
            and x.is_floating_point()
        )

    def _latents(self, x: Any) -> torch.Tensor:
        """Latents [N, D] from latents or images (images are encoded to their posterior mean)."""
        if self._is_latent(x):
            if len(x) == 0 and x.ndim == 2:
                raise LatentError(f"no latents given: the tensor has shape {tuple(x.shape)}")
            z = (x.unsqueeze(0) if x.ndim == 1 else x).float()
            if bad := latent_ops.nonfinite_rows(z):  # decoded, they would be NaN images that fail only when saved
                raise LatentError(f"latents must be finite numbers (within float32's range); row(s) "
                                  f"{_first_rows(bad)} hold NaN or infinite values")
            return z.to(self.device)
        if isinstance(x, torch.Tensor) and x.ndim in (1, 2):
            raise LatentError(
                f"latents must have {self.latent_dim} dims for this model, got shape {tuple(x.shape)}"
            )
        return self.encode(self._images_not_numpy_latents(x))

    def _images_not_numpy_latents(self, x: Any) -> torch.Tensor:
        """``images_to_tensor(x)``; a numpy array shaped like latents that is no image says how to pass latents."""
        try:
            return self.images_to_tensor(x)
        except ImageError as err:
            shape = getattr(x, "shape", ())
            square = len(shape) == 2 and shape[0] == shape[1]  # a grey image as likely as latents: stays an image
            if type(x).__module__ == "numpy" and len(shape) in (1, 2) and shape[-1] == self.latent_dim and not square:
                raise LatentError(
                    f"got a numpy array of shape {tuple(shape)}, which is not an image ({err}); latents must be a "
                    "torch tensor: pass torch.from_numpy(array)"
                ) from err
            raise

    def images_to_tensor(self, images: ImagesLike) -> torch.Tensor:
        """Convert images to this model's input tensor [N, C, S, S] in [-1, 1] (notes logged at INFO)."""
        tensor, notes = image_io.to_tensor(
            images,
            size=self.config.image_size,
            channels=self.config.channels,
            content_size=self.config.content_size,
        )
        if len(tensor) == 0:
            raise ImageError(f"no images given: the batch has shape {tuple(tensor.shape)}")
        for note in notes:
            logger.info(note)
        return tensor

    def to_pil(self, images: torch.Tensor) -> list:
        """Model outputs [N, C, S, S] -> PIL images, with any training padding cropped away."""
        if not isinstance(images, torch.Tensor):
            numpy = type(images).__module__ == "numpy"
            fix = "torch.from_numpy it first" if numpy else "torch.stack a list of them first"
            raise ImageError(
                f"to_pil takes model outputs as a tensor [N, C, S, S] or [C, S, S], got {type(images).__name__}; "
                f"{fix}"
            )
        if self._is_latent(images):
            raise ImageError(f"to_pil takes images, got latents of shape {tuple(images.shape)}; decode them first: "
                             "model.to_pil(model.decode(z))")
        pil = image_io.to_pil(images.detach().cpu(), content_size=self.config.content_size)
        return pil if isinstance(pil, list) else [pil]

    # ------------------------------------------------------------------ core operations

    def posterior(
        self, images: ImagesLike, batch_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's Gaussian posterior (mu, logvar), each [N, D]."""
        x = self.images_to_tensor(images)
        mus, logvars = [], []
        for batch in self._batches(x, batch_size):
            mu, logvar = self._run(self.encoder, batch)
            mus.append(mu)
            logvars.append(logvar)
        return torch.cat(mus), torch.cat(logvars)

    def encode(
        self,
        images: ImagesLike,
        sample: bool = False,
        seed: int | torch.Generator | None = None,
        batch_size: int | None = None,
        refine: int = 0,
        refine_seconds: float | None = None,
    ) -> torch.Tensor:
        """Images -> latents [N, D]: the posterior mean, or with ``sample=True`` a posterior sample
        (deterministic for a given ``seed``).

        ``images``: a PIL image, a file path, a numpy array (uint8 0..255 or float in [0, 1]) or a tensor
        ``[C, H, W]``/``[N, C, H, W]`` (float in [-1, 1], uint8 0..255), or a list of them; each is converted to
        the model's channels and size (see :func:`dcvae_tools.images.to_tensor`). For a folder, pass
        ``dcvae_tools.images.expand_image_paths([folder])``.

        ``refine=N`` (N > 0) then optimises each latent for N Adam steps from the posterior mean so the decoder
        reproduces the image more closely, within ``refine_seconds`` if given (see
        :func:`dcvae_tools.editing.refine.refine_latents`, which has more settings; 50 is a good N). It costs
        about 3 decodes per step and image; 0 (the default) is the plain posterior mean.
        """
        if refine or refine_seconds is not None:
            from .editing.refine import check_refine_args, refine_latents

            check_refine_args(refine, refine_seconds)
            if refine:
                if sample:
                    raise DCVAEError("refine optimises the posterior mean; it cannot be combined with sample=True")
                x = self.images_to_tensor(images)
                mu = self.posterior(x, batch_size)[0]
                return refine_latents(self, x, refine, init=mu, max_seconds=refine_seconds,
                                      batch_size=batch_size).latents
        mu, logvar = self.posterior(images, batch_size)
        return self.sample_posterior(mu, logvar, seed) if sample else mu

    @staticmethod
    def sample_posterior(mu: torch.Tensor, logvar: torch.Tensor,
                         seed: int | torch.Generator | None = None) -> torch.Tensor:
        """One draw ``mu + exp(logvar / 2) * eps`` per row, with all noise drawn at once (so the result does not
        depend on how the rows were batched). Raises :class:`~dcvae_tools.errors.LatentError` when a draw is not
        finite (a log-variance past about 177 overflows float32), naming the rows."""
        eps = torch.randn(mu.shape, generator=latent_ops._as_generator(seed)).to(mu.device)
        drawn = mu + torch.exp(0.5 * logvar) * eps
        if bad := latent_ops.nonfinite_rows(drawn):  # exp(logvar / 2) overflows float32 past a log-variance of ~177
            suspect = logvar[bad]
            finite = suspect[torch.isfinite(suspect)]
            largest = f"{finite.max().item():.4g}" if finite.numel() else "not finite"
            raise LatentError(
                f"the posterior sample of {'row' if len(bad) == 1 else 'rows'} {_first_rows(bad)} is not finite "
                f"(largest log-variance there: {largest}); "
                "the encoder is far outside what it was trained on for that input. Use the posterior mean "
                "(sample=False; `dcvae encode` without --sample), or check that the input is an image the model knows"
            )
        return drawn

    def decode(self, latents: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Latents [N, D] (or [D]) -> images [N, C, S, S] in [-1, 1] (float32; ``model.to_pil`` for PIL images).

        Runs without autograd (inference mode), so no gradient reaches ``latents``; to optimise latents through
        the decoder call ``model.decoder(z)`` directly (or see :func:`dcvae_tools.editing.refine.refine_latents`).
        """
        if not self._is_latent(latents):
            shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            fix = "; torch.from_numpy it first" if type(latents).__module__ == "numpy" else ""
            raise LatentError(f"decode expects latents of shape [N, {self.latent_dim}], got {shape}{fix}")
        z = self._latents(latents)
        return torch.cat([self._run(self.decoder, batch) for batch in self._batches(z, batch_size)])

    def reconstruct(
        self, images: ImagesLike, batch_size: int | None = None, refine: int = 0, refine_seconds: float | None = None
    ) -> torch.Tensor:
        """Encode then decode (posterior mean): images [N, C, S, S] in [-1, 1]. Warns
        (:class:`~dcvae_tools.editing.domain.OutOfDomainWarning`) about inputs far outside the model's domain.
        ``refine``/``refine_seconds``: refine the latents first (see :meth:`encode`)."""
        x = self.images_to_tensor(images)
        z = self.encode(x, batch_size=batch_size, refine=refine, refine_seconds=refine_seconds)
        recon = self.decode(z, batch_size)
        if refine:  # the domain limits were measured on posterior means: check those
            self.check_domain(x, stacklevel=4)
        else:
            self.check_domain(x, z, recon, stacklevel=4)
        return recon

    def check_domain(self, images: ImagesLike, latents: torch.Tensor | None = None,
                     reconstructions: torch.Tensor | None = None, warn: bool = True, stacklevel: int = 3) -> Any:
        """How far ``images`` are from what the model knows: a
        :class:`~dcvae_tools.editing.domain.DomainReport` (each input's Mahalanobis distance, re-encoding distance
        and reconstruction error, their p-values, the combined score, the limit, who is far), or None when the
        model has no latent statistics. With ``warn``, inputs far outside give one warning naming the model's
        domain."""
        from .editing.api import check_domain

        x = images if self._is_model_batch(images) else self.images_to_tensor(images)
        for given, what in ((latents, "latents"), (reconstructions, "reconstructions")):
            if given is not None and (not isinstance(given, torch.Tensor) or len(given) != len(x)):
                rows = len(given) if isinstance(given, torch.Tensor) else type(given).__name__
                raise LatentError(f"{what} must be a tensor with one row per image ({len(x)}), got {rows}")
        return check_domain(self, x, latents, reconstructions, warn=warn, stacklevel=stacklevel)

    def resolve_prior(
        self,
        prior: Literal["auto", "mixture", "standard"] = "auto",
        clamp: float | Literal["config"] | None = "config",
    ) -> Literal["mixture", "standard"]:
        """Which prior :meth:`random_latents` draws from for these arguments: ``"auto"`` is the mixture when the
        model ships one and no ``clamp`` is given, else the standard normal."""
        if prior not in ("auto", "mixture", "standard"):
            raise DCVAEError(f"prior must be 'auto', 'mixture' or 'standard', got {prior!r}")
        if prior == "auto":
            return "mixture" if self.latent_prior is not None and clamp == "config" else "standard"
        return prior

    def random_latents(
        self,
        n: int,
        seed: int | torch.Generator | None = None,
        clamp: float | Literal["config"] | None = "config",
        prior: Literal["auto", "mixture", "standard"] = "auto",
    ) -> torch.Tensor:
        """``n`` latents [n, D] from a prior; deterministic for a given ``seed``.

        ``prior``:

        - ``"mixture"``: the release's fitted Gaussian mixture (``latent_prior.safetensors``), which samples where
          the training images' latents lie; far better samples than N(0, I) for DC-VAE, whose latents sit well
          outside N(0, I) (docs/models.md measures it);
        - ``"standard"``: N(0, I), clamped to [-clamp, clamp] (default: the config's ``sample_clamp``, 1.0 for
          the paper's FID protocol; ``None`` for no clamp);
        - ``"auto"`` (default): the mixture when the model has one and no ``clamp`` is given, else N(0, I).

        ``clamp`` applies to N(0, I) only; giving one with ``prior="mixture"`` is an error.
        """
        n = at_least_one(n, "the number of samples")
        prior = self.resolve_prior(prior, clamp)
        generator = latent_ops._as_generator(seed)
        if prior == "mixture":
            if self.latent_prior is None:
                raise DCVAEError(
                    "this model has no fitted latent prior (latent_prior.safetensors); sample with "
                    "prior='standard' (N(0, I)), or fit one with `dcvae-train latent-stats RELEASE`"
                )
            if clamp != "config":
                raise DCVAEError(f"clamp={clamp!r} applies to the standard prior N(0, I) only; drop it, or "
                                 "sample with prior='standard'")
            return self.latent_prior.sample(n, generator).to(self.device)
        clamp = self.config.sample_clamp if clamp == "config" else clamp
        if clamp is not None and not (is_real_number(clamp) and math.isfinite(clamp) and 0 < clamp <= FLOAT32_MAX):
            raise DCVAEError(f"clamp must be a positive number a float32 holds (or None for no clamp), got {clamp!r}")
        z = torch.randn(n, self.latent_dim, generator=generator)
        if clamp is not None:
            z = z.clamp(-clamp, clamp)
        return z.to(self.device)

    def sample(
        self,
        n: int,
        seed: int | torch.Generator | None = None,
        clamp: float | Literal["config"] | None = "config",
        batch_size: int | None = None,
        prior: Literal["auto", "mixture", "standard"] = "auto",
    ) -> torch.Tensor:
        """``n`` new images [n, C, S, S] in [-1, 1] decoded from prior latents (:meth:`random_latents` draws them;
        ``model.random_latents(n, seed)`` gives the latents alone). Deterministic for a given ``seed`` (a number
        or a ``torch.Generator``).

        ``prior="auto"`` (default) draws from the release's fitted mixture when it ships one, else from N(0, I);
        ``prior="standard"`` always from N(0, I). ``clamp`` applies to N(0, I) draws only: the default
        ``"config"`` is the config's ``sample_clamp`` (1.0: the paper's FID protocol), a number clamps to
        [-clamp, clamp] and ``None`` means no clamp. Any ``clamp`` other than ``"config"`` (``None`` included)
        therefore selects N(0, I) under ``"auto"``; for DC-VAE those samples are worse than the mixture's
        (docs/models.md measures both).
        """
        return self.decode(self.random_latents(n, seed, clamp, prior), batch_size)

    # ------------------------------------------------------------------ latent-space operations

    def interpolate(
        self,
        a: ImagesLike | torch.Tensor,
        b: ImagesLike | torch.Tensor,
        steps: int = 8,
        method: Literal["lerp", "slerp"] = "lerp",
        output: Literal["images", "latents"] = "images",
    ) -> torch.Tensor:
        """Evenly spaced points from ``a`` to ``b`` (images or latents, one each), endpoints included:
        latents [steps, D] or decoded images [steps, C, S, S].

        ``method="lerp"`` walks the straight line; ``"slerp"`` the great circle between the two latents'
        directions with their norms interpolated linearly (see :func:`dcvae_tools.latent.slerp`, also for two
        latents that point the same or opposite ways)."""
        za, zb = self._latents(a), self._latents(b)
        if len(za) != 1 or len(zb) != 1:
            raise LatentError(f"interpolate takes one image or latent per end, got {len(za)} and {len(zb)}")
        _check_output(output)
        path = latent_ops.interpolate(za[0], zb[0], steps, method)
        return path if output == "latents" else self.decode(path)

    def mix(
        self,
        a: ImagesLike | torch.Tensor,
        b: ImagesLike | torch.Tensor,
        mask: torch.Tensor | None = None,
        fraction: float | None = None,
        seed: int | torch.Generator | None = None,
        output: Literal["images", "latents"] = "images",
    ) -> torch.Tensor:
        """Replace a subset of ``a``'s latent dimensions with ``b``'s (the paper's Figure 6).

        Give either a boolean ``mask`` ([D], or [K, D] for K mixes; for dimension indices use
        ``dcvae_tools.latent.mask_from_indices(model.latent_dim, [0, 1, 2])``) or a ``fraction`` of dimensions
        chosen at random (reproducible with ``seed``; default 0.5). ``a`` and ``b`` each hold one
        image/latent or the same number N; the result has one row per (row, mask) pair, row-major:
        row ``i * K + k`` is ``a``'s row i with mask k.
        """
        _check_output(output)
        za, zb = self._latents(a), self._latents(b)
        if len(za) != len(zb) and 1 not in (len(za), len(zb)):
            raise LatentError(f"mix needs as many B as A (or one of either), got {len(za)} and {len(zb)}")
        if mask is not None and fraction is not None:
            raise LatentError("give mask or fraction, not both")
        if mask is None:
            mask = latent_ops.random_mask(self.latent_dim, 0.5 if fraction is None else fraction, seed)
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool or mask.ndim not in (1, 2) or mask.shape[-1] != self.latent_dim or not mask.numel():
            indices = not mask.is_floating_point() and mask.dtype != torch.bool
            hint = (f"; for dimension indices pass dcvae_tools.latent.mask_from_indices({self.latent_dim}, indices)"
                    if indices else "")
            raise LatentError(
                f"mask must be boolean of shape [{self.latent_dim}] or [K, {self.latent_dim}], "
                f"got {mask.dtype} {tuple(mask.shape)}{hint}"
            )
        masks = mask.reshape(-1, self.latent_dim).to(self.device)
        mixed = latent_ops.mix(za.unsqueeze(1), zb.unsqueeze(1), masks.unsqueeze(0)).reshape(
            -1, self.latent_dim
        )
        return mixed if output == "latents" else self.decode(mixed)

    def attribute_vector(
        self,
        positive: ImagesLike | torch.Tensor,
        negative: ImagesLike | torch.Tensor,
        name: str = "attribute",
        normalize: bool = False,
        metadata: Mapping[str, Any] | None = None,
    ) -> AttributeVector:
        """The paper's attribute direction: mean latent of ``positive`` minus mean of ``negative``
        (images or latents; the paper uses 20 of each, and fewer on either side warn). Counts are recorded on the
        result."""
        check_attribute_name(name)
        zp, zn = self._side_latents(positive, "positive"), self._side_latents(negative, "negative")
        direction = latent_ops.attribute_direction(zp, zn, normalize)
        latent_ops.warn_if_few_examples(len(zp), len(zn))
        meta = dict(metadata or {})
        if self.latent_stats is not None:  # what one strength unit is along it, as boundary() records
            from .editing.units import unit_metadata

            meta["unit"] = unit_metadata(direction, self.latent_stats)
        return AttributeVector(name, direction.cpu(), len(zp), len(zn), normalize, meta)

    def _side_latents(self, x: Any, side: str) -> torch.Tensor:
        """``_latents`` of one side of an attribute, its errors naming the side (``positive``/``negative``)."""
        try:
            return self._latents(x)
        except (ImageError, LatentError) as exc:
            exc.args = (f"{side}: {exc}", *exc.args[1:])  # the same error, its message naming the side
            raise

    def _direction(self, key: str | torch.Tensor | AttributeVector) -> torch.Tensor:
        if isinstance(key, AttributeVector):
            return key.direction
        if isinstance(key, torch.Tensor):
            return key
        if key in self.attributes:
            return self.attributes[key].direction
        import difflib

        known = ", ".join(sorted(self.attributes)) or "none: this checkpoint ships no attributes"
        close = difflib.get_close_matches(str(key), list(self.attributes), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if isinstance(key, str) and any(mark in key for mark in (".safetensors", ":", "/", "\\")):
            file = key.rpartition(":")[0] if ":" in key and not Path(key).is_file() else key
            hint = (f"names here are the model's own; for an attributes file (the command line's FILE or "
                    f"FILE:NAME), pass its AttributeVector: dcvae_tools.load_attributes({file!r})[NAME]; ")
        raise LatentError(f"unknown attribute {key!r}; {hint}this model's attributes: {known}")

    def edit(
        self,
        images_or_latents: ImagesLike | torch.Tensor,
        edits: Mapping[str | AttributeVector, float] | Sequence[tuple[Any, float]],
        output: Literal["images", "latents"] = "images",
        unit: Literal["std", "raw"] | None = None,
        hold: Sequence[str | AttributeVector | torch.Tensor] = (),
        refine: int = 0,
        refine_seconds: float | None = None,
    ) -> torch.Tensor:
        """Move the latents of ``images_or_latents`` along every (attribute, strength) in ``edits`` (summed).

        Attributes are names of the model's own attributes, AttributeVectors, or plain [D] tensors.
        ``unit="std"`` (the default when the model has latent statistics): strength 1.0 is one standard deviation of
        the training latents along the direction; ``unit="raw"`` (the default otherwise): ``strength * direction``,
        the paper's. ``hold``: directions to keep fixed; they are projected out of every edit direction
        (InterFaceGAN's conditional edit). See docs/editing.md. Image inputs far outside the model's domain warn.
        ``refine``/``refine_seconds``: refine the latents of image inputs first (see :meth:`encode`).
        """
        from .editing.api import edit_offsets

        _check_output(output)
        pairs = _edit_pairs(edits)
        if isinstance(hold, str | AttributeVector) or (isinstance(hold, torch.Tensor) and hold.ndim == 1):
            hold = [hold]  # one held direction given on its own
        if isinstance(images_or_latents, torch.Tensor) and images_or_latents.ndim in (1, 2):
            if refine:
                raise LatentError("refine needs images: latents were given; refine when encoding them instead")
            z = self._latents(images_or_latents)
        else:
            x = self._images_not_numpy_latents(images_or_latents)
            z = self.encode(x, refine=refine, refine_seconds=refine_seconds)
            self.check_domain(x, None if refine else z, stacklevel=4)
        offsets = edit_offsets(self, pairs, unit, hold)
        edited = z  # added here, not by apply_edits: an offset that overflowed is named as the strength's below
        for offset in offsets:
            edited = edited + offset.to(device=z.device, dtype=z.dtype)
        if rows := latent_ops.nonfinite_rows(edited):  # the latents were finite, so the strengths overflowed float32
            shown = ", ".join(map(str, rows[:5]))
            error = LatentError(f"the edited latents of row(s) {shown} overflow float32: an edit strength is far too "
                                "large (strengths are usually a few units)")
            error.rows = rows  # type: ignore[attr-defined]  # for callers that name the rows' sources
            raise error
        return edited if output == "latents" else self.decode(edited)

    def boundary(
        self,
        positive: ImagesLike | torch.Tensor,
        negative: ImagesLike | torch.Tensor,
        name: str = "attribute",
        l2: float = 1e-2,
        metadata: Mapping[str, Any] | None = None,
    ) -> AttributeVector:
        """A supervised attribute direction (InterFaceGAN): the unit normal of an L2-regularised logistic
        regression separating the latents of ``positive`` from ``negative`` (images or latents); see
        :mod:`dcvae_tools.editing.boundary`."""
        from .editing.api import boundary_direction

        return boundary_direction(self, positive, negative, name=name, l2=l2, metadata=metadata, _stacklevel=4)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"architecture={c.architecture}, image_size={c.image_size}, channels={c.channels}, "
            f"latent_dim={c.latent_dim}, attributes={sorted(self.attributes)}"
        )


def _first_rows(rows: list[int], shown: int = 5) -> str:
    """The first ``shown`` row indices for a message (``"0, 3, 7 and 12 more"``)."""
    return ", ".join(map(str, rows[:shown])) + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


def _check_output(output: object) -> None:
    if output not in ("images", "latents"):
        raise DCVAEError(f"output must be 'images' or 'latents', got {output!r}")


def _edit_pairs(edits: object) -> list[tuple[Any, Any]]:
    """``edits`` as (attribute, strength) pairs: from a mapping, or any iterable of pairs."""
    if isinstance(edits, Mapping):
        return list(edits.items())
    usage = "edits must be a mapping {attribute: strength} or a list of (attribute, strength) pairs"
    if isinstance(edits, str | bytes | torch.Tensor | AttributeVector) or not isinstance(edits, Iterable):
        raise LatentError(f"{usage}, got {type(edits).__name__} {edits!r:.60}")
    pairs = list(edits)
    for item in pairs:
        if isinstance(item, str) or not isinstance(item, Sequence) or len(item) != 2:
            single = len(pairs) == 2 and isinstance(pairs[0], str | AttributeVector | torch.Tensor)
            hint = f" (did you mean [{tuple(pairs)!r:.40}]?)" if single else ""
            raise LatentError(f"{usage}; {item!r:.60} is not a pair{hint}")
    return [tuple(item) for item in pairs]
