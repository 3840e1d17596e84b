"""The metric registry: small ``@register_metric`` functions whose names encode the protocol.

Design follows StyleGAN2-ADA's ``metrics/metric_main.py`` (NVlabs/stylegan2-ada-pytorch): one function per
protocol, named after it, results appended to ``metric-<name>.jsonl`` by :func:`training.evaluate.evaluate`.

Names (``list_metrics()``):

=======================  =================================================================================
``fid50k_inception``     FID-Inception (pytorch-fid's network, needs its weights file): 50,000 samples (z ~
                         N(0, I) clamped to the config's ``sample_clamp``, the paper's protocol) vs. the
                         train split. Comparable with published FIDs only on the same data (CIFAR-10 train).
``fd10k_classifier``     Frechet distance in the FD-classifier's 128-d features: 10,000 samples vs. 10,000
                         train images.
``fd10k_lite0``          the same with EfficientNet-Lite0 ImageNet features (1280-d).
``fd<N>_<net>``          any count: ``fd2k_classifier``, ``fd500_lite0``, ``fid10k_inception`` ("k" = x1000).
``rfd_classifier``       reconstruction FD: reconstructions of the test split vs. the test split itself.
``rfd_lite0``            the same with Lite0 features; ``rfid_inception`` with FID-Inception.
``recon_mse_test``       pixel MSE on the [0, 1] scale, test split (content region).
``recon_psnr_test``      10 log10(1 / MSE) of the same.
``probe_linear_test``    linear probe on the frozen encoder's posterior means: train split -> test accuracy.
``probe_pixels_test``    the same probe on raw pixels (the baseline).
``latent_kl_test``       KL from N(0, I) of the test split's moment-matched aggregate posterior, per dimension:
                         how far the encoder's latents sit from where samples are drawn (0 = matched).
``perceptual_hed_test``  VGG16 relu4_3 feature MSE, reconstructions vs. test images, HED (edge-tuned) weights.
``perceptual_vgg16_test``  the same with ImageNet VGG16 weights from ``vgg_weights`` (the paper's network).
``sample_class_entropy10k``  entropy of the classes the FD-classifier gives 10,000 prior samples, divided by
                         log(classes): 1 when every class is equally common, 0 when all are one class (the
                         diversity an FD alone can hide); the same for 10,000 train images is in details.
``edit_success_<attr>``  share of edited negative-side test images the classifier puts in the attribute's
                         positive classes (``edit_success_long_sleeves``).
=======================  =================================================================================

Reference sets (documented choice): a sampling FD with N samples is measured against N images of the TRAIN
split (a fixed seeded subset; the whole split when it has N or fewer images, e.g. CIFAR-10's 50,000 for
``fid50k_inception``, as the paper). A reconstruction FD compares reconstructions of the TEST split with the
TEST split. Real-image statistics are cached in ``<cache>/fd-stats/`` (.npz).

``num_samples`` (``--num-samples``) replaces the count of sampling FDs and the reported name says so:
asking for ``fd10k_classifier`` with ``num_samples=2000`` reports ``fd2k_classifier``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .common import (
    MetricError,
    batches,
    crop_content,
    default_cache_dir,
    labelled_split_tensors,
    require_finite,
    split_tensors,
)
from .features import FeatureNetwork, feature_stats_of
from .frechet import frechet_distance, load_statistics, save_statistics

__all__ = [
    "MetricError",
    "MetricOptions",
    "MetricOutcome",
    "MetricResult",
    "calc_metric",
    "format_count",
    "is_valid_metric",
    "list_metrics",
    "register_metric",
    "register_metric_family",
    "resolve_metric",
]


@dataclass
class MetricResult:
    """What a metric function returns: the reported number and JSON-able details."""

    value: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class MetricOutcome:
    """A computed metric: the reported name (with the count actually used), value, details, wall time."""

    name: str
    requested: str
    value: float
    details: dict[str, Any]
    seconds: float


SAMPLE_PRIORS = ("standard", "fitted", "mixture")
"""Where sampling metrics draw latents (``MetricOptions.sample_prior``)."""


@dataclass
class MetricOptions:
    """Everything a metric may need; shared (and memoised) across the metrics of one evaluation.

    Attributes:
        model: the DCVAE being evaluated.
        dataset: evaluation data (``training.data.make_dataset`` name).
        data_root: passed to ``make_dataset``.
        num_samples: replaces the count of sampling FDs (None: the count in the name).
        batch_size: images per forward pass everywhere.
        seed: seed of the sampled latents (and of class-based edit directions).
        cache_dir: classifiers and statistics cache (None: ``~/.cache/dcvae-tools``).
        device: where feature networks run (None: the model's device).
        inception_weights: pytorch-fid's Inception weights file (FID-Inception).
        vgg_weights: torchvision's ImageNet VGG16 file (``perceptual_vgg16_test``).
        lite0_normalization: ``"tf"`` (what the weights were trained with) or ``"imagenet"``.
        test_limit: use a fixed subset of this many test images (None: the whole split).
        train_limit: the same for the train split in the linear probes.
        edit_strength: multiple of the attribute direction added by ``edit_success_*``.
        edit_classes: attribute -> (positive classes, negative classes), overriding the built-in sets.
        show_progress: progress bars (None: when stderr is a terminal).
        classifier_kwargs: passed to the classifier training when none is cached.
        sample_prior: where sampling FDs draw latents: ``"standard"`` (N(0, I), the paper's protocol),
            ``"fitted"`` (a diagonal Gaussian fitted to the posteriors of a fixed seeded subset of 10,000 training
            images: mean ``E[mu]``, variance ``Var[mu] + E[sigma^2]``; the clamp then applies to the standardised
            draw) or
            ``"mixture"`` (the release's ``latent_prior.safetensors``; for a model without one, a mixture fitted
            the same way to a fixed seeded subset of 20,000 training images).
    """

    model: Any
    dataset: str
    data_root: str | None = None
    num_samples: int | None = None
    batch_size: int = 256
    seed: int = 0
    cache_dir: str | Path | None = None
    device: str | torch.device | None = None
    inception_weights: str | Path | None = None
    vgg_weights: str | Path | None = None
    lite0_normalization: str = "tf"
    test_limit: int | None = None
    train_limit: int | None = None
    edit_strength: float = 1.0
    edit_classes: dict[str, tuple[Sequence[int], Sequence[int]]] = field(default_factory=dict)
    show_progress: bool | None = None
    classifier_kwargs: dict[str, Any] = field(default_factory=dict)
    sample_prior: str = "standard"
    shared: dict[str, Any] = field(default_factory=dict)
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    splits_read: set[str] = field(default_factory=set, repr=False)  # "train" / "test": what the metrics measured

    def __post_init__(self) -> None:
        from ..data import canonical_dataset_name

        self.dataset = canonical_dataset_name(self.dataset)  # classifiers and class sets are keyed by it
        if self.sample_prior not in SAMPLE_PRIORS:
            raise MetricError(f"sample_prior must be one of {', '.join(SAMPLE_PRIORS)}, got {self.sample_prior!r}")

    # ------------------------------------------------------------------ plumbing

    @property
    def content_size(self) -> int:
        return int(self.model.config.content_size or self.model.config.image_size)

    @property
    def run_device(self) -> torch.device:
        return torch.device(self.device) if self.device is not None else self.model.device

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """Compute ``make()`` once per evaluation."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def split(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A split in the model's format ([N, C, S, S] in [-1, 1]) and its labels."""
        self.splits_read.add(split)
        c = self.model.config
        return split_tensors(self.dataset, split, c.image_size, c.channels, self.data_root, limit, self.content_size)

    def labelled_split(self, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`split` without unlabelled images (STL-10's train split), ``limit`` taken among the labelled."""
        self.splits_read.add(split)
        c = self.model.config
        return labelled_split_tensors(self.dataset, split, c.image_size, c.channels, self.data_root, limit,
                                      self.content_size)

    def test_split(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.split("test", self.test_limit)

    def reconstructions(self) -> torch.Tensor:
        """Reconstructions (posterior mean, decoded) of the test split, on the CPU."""

        def make() -> torch.Tensor:
            images, _ = self.test_split()
            # encode + decode rather than model.reconstruct: the test split is the domain check's own reference,
            # so its warning (and its extra encode) would only cost time here
            return require_finite(torch.cat([
                self.model.decode(self.model.encode(b, batch_size=self.batch_size), self.batch_size).cpu()
                for b in batches(images, 4096)
            ]), "test reconstructions")

        return self.memo("reconstructions", make)

    def classifier(self) -> Any:
        """The dataset's FD-classifier (trained and cached on first use)."""

        def make() -> Any:
            from .classifier import load_or_train_classifier

            net = load_or_train_classifier(
                self.dataset,
                self.cache_dir,
                self.data_root,
                device=self.run_device,
                show_progress=self.show_progress,
                **self.classifier_kwargs,
            )
            self.shared["classifier"] = net.describe()
            return net

        return self.memo("classifier", make)

    def feature_network(self, short: str) -> FeatureNetwork:
        """``"classifier"``, ``"lite0"`` or ``"inception"``, loaded once."""

        def make() -> FeatureNetwork:
            if short == "classifier":
                return self.classifier()
            if short == "lite0":
                from .lite0 import load_lite0

                return load_lite0(self.run_device, self.lite0_normalization)  # type: ignore[arg-type]
            if short == "inception":
                from .inception import load_fid_inception

                return load_fid_inception(self.inception_weights, self.run_device)
            raise MetricError(f"unknown feature network {short!r}: classifier, lite0 or inception")

        return self.memo(("net", short), make)

    def real_statistics(self, net: FeatureNetwork, split: str, limit: int | None) -> tuple[Any, Any, dict[str, Any]]:
        """Feature statistics of real images of a split (a fixed subset of ``limit``), cached as .npz."""
        c = self.model.config
        images, _ = self.split(split, limit)
        tag = f"{self.dataset}-{split}-{len(images)}-{c.channels}x{c.image_size}c{self.content_size}"
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in tag)
        # the images' own hash: another --data-root (a folder, an mnist5k csv) with as many images is other data
        content = hashlib.sha256(images.contiguous().numpy().tobytes()).hexdigest()
        path = default_cache_dir(self.cache_dir) / "fd-stats" / f"{safe}-{content[:16]}-{net.cache_key()}.npz"
        if path.is_file():
            mu, sigma, meta = load_statistics(path)
            if meta.get("num_images") == len(images) and meta.get("images_sha256") == content:
                return mu, sigma, {**meta, "cache_file": str(path)}
        mu, sigma, count = feature_stats_of(
            net, crop_content(images, self.content_size), self.batch_size, self.show_progress
        )
        meta = {
            "dataset": self.dataset,
            "split": split,
            "num_images": count,
            "subset": limit is not None and count < len(self.split(split, None)[0]),
            "feature_network": net.name,
            "network_key": net.cache_key(),
            "image_format": tag,
            "images_sha256": content,
        }
        save_statistics(path, mu, sigma, **meta)
        return mu, sigma, {**meta, "cache_file": str(path)}


MetricFn = Callable[[MetricOptions], MetricResult]
_REGISTRY: dict[str, MetricFn] = {}
_FAMILIES: list[tuple[re.Pattern[str], str, Callable[[MetricOptions, re.Match[str]], MetricResult]]] = []


def register_metric(fn: MetricFn) -> MetricFn:
    """Register ``fn`` under its own name (which must encode the protocol, e.g. ``fd10k_classifier``)."""
    _REGISTRY[fn.__name__] = fn
    return fn


def register_metric_family(
    pattern: str, example: str
) -> Callable[[Callable[[MetricOptions, re.Match[str]], MetricResult]], Callable[..., MetricResult]]:
    """Register a parametric family of names (a full-match regex); ``example`` is listed by ``list_metrics``."""

    def wrap(fn: Callable[[MetricOptions, re.Match[str]], MetricResult]) -> Callable[..., MetricResult]:
        _FAMILIES.append((re.compile(pattern), example, fn))
        return fn

    return wrap


def list_metrics() -> list[str]:
    """Registered names, then one example of each parametric family."""
    return sorted(_REGISTRY) + [example for _, example, _ in _FAMILIES]


def format_count(n: int) -> str:
    """10000 -> ``"10k"``, 2500 -> ``"2500"``: the count as written in metric names."""
    return f"{n // 1000}k" if n % 1000 == 0 and n >= 1000 else str(n)


def _parse_count(text: str) -> int:
    return int(text[:-1]) * 1000 if text.endswith("k") else int(text)


_SAMPLING = re.compile(r"(?P<kind>fid|fd)(?P<count>\d+k?)_(?P<net>inception|classifier|lite0)")


def resolve_metric(name: str, num_samples: int | None = None) -> tuple[str, MetricFn]:
    """The reported name and the function for a requested metric name.

    Raises:
        MetricError: unknown name (the message lists the valid ones) or a wrong prefix.
    """
    sampling = _SAMPLING.fullmatch(name)
    if sampling:
        kind, net = sampling["kind"], sampling["net"]
        if (kind == "fid") != (net == "inception"):
            fix = f"fid{sampling['count']}_inception" if net == "inception" else f"fd{sampling['count']}_{net}"
            raise MetricError(f"{name!r}: 'fid' is reserved for the Inception network; did you mean {fix!r}?")
        count = num_samples if num_samples is not None else _parse_count(sampling["count"])
        if count < 2:
            raise MetricError(f"{name!r}: a Frechet distance needs at least 2 samples, got {count}")
        reported = f"{kind}{format_count(count)}_{net}"
        return reported, lambda opts: sampling_fd(opts, net, count)
    if name in _REGISTRY:
        return name, _REGISTRY[name]
    for pattern, _, fn in _FAMILIES:
        match = pattern.fullmatch(name)
        if match:
            return name, lambda opts, fn=fn, match=match: fn(opts, match)
    raise MetricError(f"unknown metric {name!r}; valid: {', '.join(list_metrics())}")


def is_valid_metric(name: str) -> bool:
    """Whether ``name`` is a registered metric or matches a family."""
    try:
        resolve_metric(name)
    except MetricError:
        return False
    return True


def calc_metric(name: str, opts: MetricOptions) -> MetricOutcome:
    """Run one metric; its details gain ``seconds`` (wall time) and ``cpu_seconds`` (this process's CPU time),
    both including any shared work it triggered first (test reconstructions, classifier training)."""
    reported, fn = resolve_metric(name, opts.num_samples)
    start, cpu_start = time.perf_counter(), time.process_time()
    result = fn(opts)
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start  # beside wall time: tells a busy machine from a slow metric
    details = {**result.details, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3)}
    return MetricOutcome(reported, name, float(result.value), details, seconds)


# ---------------------------------------------------------------------------------------------- FD metrics


FITTED_PRIOR_IMAGES = 10_000
"""Training images whose posteriors the ``"fitted"`` sampling prior is fitted to."""


def fitted_prior(opts: MetricOptions) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std), each [D]: the moment-matched aggregate posterior of the first training images."""

    def fit() -> tuple[torch.Tensor, torch.Tensor]:
        from .latent import aggregate_moments

        images, _ = opts.split("train", FITTED_PRIOR_IMAGES)
        mean, var = aggregate_moments(*opts.model.posterior(images, batch_size=opts.batch_size))
        return mean.float(), var.sqrt().float()

    return opts.memo(("fitted_prior",), fit)


MIXTURE_PRIOR_IMAGES = 20_000
"""Training images a ``"mixture"`` sampling prior is fitted to, for a model that ships none."""


def mixture_source(opts: MetricOptions) -> str:
    """Which mixture ``"mixture"`` sampling draws from, in words (recorded with the scores and as the deviation)."""
    if getattr(opts.model, "latent_prior", None) is not None:
        prior = opts.model.latent_prior
        count = str(prior.metadata.get("count", "its"))
        count = f"{int(count):,}" if count.isdigit() else count
        starts = f", the most likely of {prior.restarts} EM starts" if prior.restarts > 1 else ""
        return (f"the release's latent_prior.safetensors ({prior.components} components, fitted to "
                f"{count} training latents{starts})")
    from ..latent_prior import DEFAULT_RESTARTS

    # reports written before 2026-12-07 fitted this mixture from one EM start
    return (f"a 10-component mixture fitted to a fixed seeded subset of up to {MIXTURE_PRIOR_IMAGES:,} training images "
            f"(the most likely of {DEFAULT_RESTARTS} EM starts; the model ships none)")


def mixture_prior(opts: MetricOptions) -> Any:
    """The model's shipped latent prior, or one fitted like a release's to a fixed subset of training images."""
    if getattr(opts.model, "latent_prior", None) is not None:
        return opts.model.latent_prior

    def fit() -> Any:
        from ..latent_prior import fit_latent_prior, posterior_draws

        images, _ = opts.split("train", MIXTURE_PRIOR_IMAGES)
        mu, logvar = opts.model.posterior(images, batch_size=opts.batch_size)
        return fit_latent_prior(posterior_draws(mu.cpu(), logvar.cpu()))

    return opts.memo(("mixture_prior",), fit)


def _sample_batches(opts: MetricOptions, count: int) -> Iterator[torch.Tensor]:
    if opts.sample_prior == "mixture":
        generator = torch.Generator().manual_seed(opts.seed)
        z = mixture_prior(opts).sample(count, generator).to(opts.model.device)
    else:
        z = opts.model.random_latents(count, seed=opts.seed, prior="standard")  # clamped to config.sample_clamp
    if opts.sample_prior == "fitted":
        mean, std = fitted_prior(opts)
        z = mean.to(z.device) + std.to(z.device) * z
    for zb in batches(z, opts.batch_size):
        yield require_finite(crop_content(opts.model.decode(zb, batch_size=opts.batch_size), opts.content_size),
                             "decoded samples (in one batch)")


def sampling_fd(opts: MetricOptions, net_name: str, count: int) -> MetricResult:
    """FD between ``count`` samples and ``count`` train images (all of them when the split is smaller)."""
    net = opts.feature_network(net_name)
    mu_r, sigma_r, ref = opts.real_statistics(net, "train", count)
    samples = _sample_batches(opts, count)
    mu_s, sigma_s, n = feature_stats_of(net, samples, opts.batch_size, opts.show_progress, total=count)
    return MetricResult(
        frechet_distance(mu_s, sigma_s, mu_r, sigma_r),
        {
            **net.describe(),
            "num_samples": n,
            "sample_clamp": None if opts.sample_prior == "mixture" else opts.model.config.sample_clamp,
            "sample_prior": opts.sample_prior,
            **({"mixture": mixture_source(opts)} if opts.sample_prior == "mixture" else {}),
            "seed": opts.seed,
            "reference": ref,
            "protocol": f"{n} samples vs. {ref['num_images']} train images",
        },
    )


@register_metric
def fid50k_inception(opts: MetricOptions) -> MetricResult:
    """The paper's FID: 50,000 samples (z clamped to [-1, 1]) vs. train statistics, pytorch-fid's Inception."""
    return sampling_fd(opts, "inception", 50_000)


@register_metric
def fd10k_classifier(opts: MetricOptions) -> MetricResult:
    """FD in the dataset classifier's features: 10,000 samples vs. 10,000 train images."""
    return sampling_fd(opts, "classifier", 10_000)


@register_metric
def fd10k_lite0(opts: MetricOptions) -> MetricResult:
    """FD in EfficientNet-Lite0 features: 10,000 samples vs. 10,000 train images."""
    return sampling_fd(opts, "lite0", 10_000)


def reconstruction_fd(opts: MetricOptions, net_name: str) -> MetricResult:
    """FD between reconstructions of the test split and the test split."""
    net = opts.feature_network(net_name)
    mu_r, sigma_r, ref = opts.real_statistics(net, "test", opts.test_limit)
    recon = crop_content(opts.reconstructions(), opts.content_size)
    mu_s, sigma_s, n = feature_stats_of(net, recon, opts.batch_size, opts.show_progress)
    return MetricResult(
        frechet_distance(mu_s, sigma_s, mu_r, sigma_r),
        {**net.describe(), "num_images": n, "reference": ref, "protocol": f"{n} test reconstructions vs. test split"},
    )


@register_metric
def rfd_classifier(opts: MetricOptions) -> MetricResult:
    """Reconstruction FD, classifier features: test reconstructions vs. test images."""
    return reconstruction_fd(opts, "classifier")


@register_metric
def rfd_lite0(opts: MetricOptions) -> MetricResult:
    """Reconstruction FD, Lite0 features: test reconstructions vs. test images."""
    return reconstruction_fd(opts, "lite0")


@register_metric
def rfid_inception(opts: MetricOptions) -> MetricResult:
    """Reconstruction FID (FID-Inception): test reconstructions vs. test images."""
    return reconstruction_fd(opts, "inception")


# ----------------------------------------------------------------------------------- reconstruction metrics


def _recon_errors(opts: MetricOptions) -> dict[str, float]:
    from .reconstruction import reconstruction_errors

    def make() -> dict[str, float]:
        images, _ = opts.test_split()
        return reconstruction_errors(images, opts.reconstructions(), opts.content_size)

    return opts.memo("recon_errors", make)


@register_metric
def recon_mse_test(opts: MetricOptions) -> MetricResult:
    """Pixel MSE on the [0, 1] scale between test images and their reconstructions (content region)."""
    errors = _recon_errors(opts)
    return MetricResult(errors["mse"], {**errors, "scale": "[0, 1]", "split": "test"})


@register_metric
def recon_psnr_test(opts: MetricOptions) -> MetricResult:
    """PSNR = 10 log10(1 / MSE) of ``recon_mse_test`` (dB)."""
    errors = _recon_errors(opts)
    return MetricResult(errors["psnr"], {**errors, "scale": "[0, 1]", "split": "test"})


@register_metric
def recon_class_agreement_test(opts: MetricOptions) -> MetricResult:
    """Share of test images whose reconstruction the FD-classifier puts in the source's predicted class.

    Whether a reconstruction is still the same thing (a coat stays a coat), which pixel MSE and a Frechet
    distance over the whole set do not say. Compared with the classifier's class of the source image, not the
    label, so the classifier's own errors on the sources do not count against the model.
    """
    classifier = opts.classifier()
    images, labels = opts.test_split()
    source = classifier.predict(crop_content(images, opts.content_size), opts.batch_size)
    recon = classifier.predict(crop_content(opts.reconstructions(), opts.content_size), opts.batch_size)
    agree = (source == recon).double()
    per_class = {
        name: round(float(agree[source == c].mean()), 4)
        for c, name in enumerate(_class_names(opts.dataset, classifier.config.num_classes))
        if bool((source == c).any())
    }
    return MetricResult(
        float(agree.mean()),
        {
            "num_images": len(agree),
            "label_agreement_of_sources": float((source == labels.to(source.device)).double().mean()),
            "label_agreement_of_reconstructions": float((recon == labels.to(recon.device)).double().mean()),
            "per_source_class": per_class,
            "protocol": f"classifier's class of {len(agree)} test reconstructions vs. of their sources",
        },
    )


@register_metric
def perceptual_hed_test(opts: MetricOptions) -> MetricResult:
    """VGG16 relu4_3 feature MSE of test reconstructions, with HED's edge-tuned VGG16 weights (not ImageNet)."""
    from .perceptual import load_hed_vgg16

    net = opts.memo(("vgg", "hed"), lambda: load_hed_vgg16(device=opts.run_device))
    return _perceptual(opts, net)


@register_metric
def perceptual_vgg16_test(opts: MetricOptions) -> MetricResult:
    """VGG16 relu4_3 feature MSE of test reconstructions, ImageNet VGG16 from ``vgg_weights`` (the paper's)."""
    from .perceptual import PerceptualUnavailableError, load_imagenet_vgg16

    if opts.vgg_weights is None:
        raise PerceptualUnavailableError(
            "perceptual_vgg16_test needs torchvision's ImageNet VGG16 weights file (vgg16-397923af.pth): pass "
            "--vgg-weights PATH; perceptual_hed_test runs without it (edge-tuned HED weights)"
        )
    net = opts.memo(("vgg", "imagenet"), lambda: load_imagenet_vgg16(opts.vgg_weights, opts.run_device))
    return _perceptual(opts, net)


def _perceptual(opts: MetricOptions, net: Any) -> MetricResult:
    from .perceptual import perceptual_distance

    images, _ = opts.test_split()
    recon = opts.reconstructions()
    value, per_pair = perceptual_distance(
        net,
        crop_content(recon, opts.content_size),
        crop_content(images, opts.content_size),
        batch_size=opts.batch_size,
        show_progress=opts.show_progress,
    )
    return MetricResult(value, {**net.describe(), "num_images": len(per_pair), "split": "test"})


# --------------------------------------------------------------------------------------------- linear probes


@register_metric
def probe_linear_test(opts: MetricOptions) -> MetricResult:
    """Linear probe (A.6): softmax regression on frozen posterior means, train split -> test accuracy."""
    from .probe import latent_probe

    train_x, train_y = opts.labelled_split("train", opts.train_limit)
    test_x, test_y = opts.test_split()
    result = latent_probe(opts.model, train_x, train_y, test_x, test_y, batch_size=opts.batch_size)
    return MetricResult(result.test_accuracy, result.to_dict())


@register_metric
def probe_pixels_test(opts: MetricOptions) -> MetricResult:
    """The same linear probe on raw pixels: the baseline that ``probe_linear_test`` should beat."""
    from .probe import pixel_probe

    train_x, train_y = opts.labelled_split("train", opts.train_limit)
    test_x, test_y = opts.test_split()
    result = pixel_probe(train_x, train_y, test_x, test_y, content_size=opts.content_size)
    return MetricResult(result.test_accuracy, result.to_dict())


# ------------------------------------------------------------------------------------------- latent geometry


@register_metric
def latent_kl_test(opts: MetricOptions) -> MetricResult:
    """KL from N(0, I) of the test split's moment-matched aggregate posterior, per latent dimension."""
    from .latent import aggregate_prior_kl

    images, _ = opts.test_split()
    mu, logvar = opts.model.posterior(images, batch_size=opts.batch_size)
    value, details = aggregate_prior_kl(mu, logvar)
    return MetricResult(value, {**details, "split": "test"})


# -------------------------------------------------------------------------------------------- sample classes


def class_shares(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """[num_classes] share of each label (float64, sums to 1)."""
    return torch.bincount(labels, minlength=num_classes).double() / max(len(labels), 1)


def normalized_entropy(shares: torch.Tensor) -> float:
    """Entropy of a distribution divided by log(len): 1 for uniform, 0 for a single class."""
    nonzero = shares[shares > 0]
    return float(-(nonzero * nonzero.log()).sum() / torch.log(torch.tensor(float(len(shares)), dtype=torch.float64)))


SAMPLE_CLASS_IMAGES = 10_000


@register_metric
def sample_class_entropy10k(opts: MetricOptions) -> MetricResult:
    """Normalised entropy of the FD-classifier's classes for 10,000 prior samples (1 = every class equally)."""
    classifier = opts.classifier()
    num_classes = classifier.config.num_classes
    samples = _sample_batches(opts, SAMPLE_CLASS_IMAGES)
    labels = torch.cat([classifier.predict(batch, opts.batch_size) for batch in samples])
    real, _ = opts.split("train", SAMPLE_CLASS_IMAGES)
    real_labels = classifier.predict(crop_content(real, opts.content_size), opts.batch_size)
    shares, real_shares = class_shares(labels, num_classes), class_shares(real_labels, num_classes)
    names = _class_names(opts.dataset, num_classes)
    return MetricResult(
        normalized_entropy(shares),
        {
            "num_samples": len(labels),
            "sample_prior": opts.sample_prior,
            **({"mixture": mixture_source(opts)} if opts.sample_prior == "mixture" else {}),
            "seed": opts.seed,
            "class_shares": {name: round(float(v), 4) for name, v in zip(names, shares, strict=True)},
            "train_entropy": normalized_entropy(real_shares),
            "train_class_shares": {name: round(float(v), 4) for name, v in zip(names, real_shares, strict=True)},
            "protocol": f"classifier's classes of {len(labels)} samples; reference: {len(real_labels)} train images",
        },
    )


def _class_names(dataset: str, num_classes: int) -> list[str]:
    from ..data import FASHION_MNIST_CLASSES

    if dataset.startswith("fashion") and num_classes == len(FASHION_MNIST_CLASSES):
        return list(FASHION_MNIST_CLASSES)
    return [str(c) for c in range(num_classes)]


# ---------------------------------------------------------------------------------------------- edit success


def attribute_classes(opts: MetricOptions, attribute: str) -> tuple[list[int], list[int], str]:
    """(positive classes, negative classes, where they came from) of an attribute."""
    if attribute in opts.edit_classes:
        pos, neg = opts.edit_classes[attribute]
        return [int(c) for c in pos], [int(c) for c in neg], "given"
    try:
        from .. import attributes as shipped
    except ImportError:
        shipped = None
    spec = getattr(shipped, "ATTRIBUTES", {}).get(opts.dataset, {}).get(attribute) if shipped else None
    if spec is not None and hasattr(spec, "positive") and hasattr(spec, "negative"):
        return [int(c) for c in spec.positive], [int(c) for c in spec.negative], "training.attributes"
    vector = opts.model.attributes.get(attribute)
    meta = getattr(vector, "metadata", {}) or {}
    if "positive_classes" in meta and "negative_classes" in meta:
        return [int(c) for c in meta["positive_classes"]], [int(c) for c in meta["negative_classes"]], "metadata"
    raise MetricError(
        f"edit_success_{attribute}: no class sets for attribute {attribute!r} on {opts.dataset}; the metric needs "
        "an attribute defined by classes (training.attributes) or edit_classes={name: (positive, negative)}"
    )


@register_metric_family(r"edit_success_(?P<attr>[A-Za-z0-9_]+)", "edit_success_<attr>")
def edit_success_metric(opts: MetricOptions, match: re.Match[str]) -> MetricResult:
    """Share of edited negative-side test images classified into the attribute's positive classes."""
    from .edit import class_direction, edit_success

    attribute = match["attr"]
    positive, negative, source = attribute_classes(opts, attribute)
    if attribute in opts.model.attributes:
        direction = opts.model.attributes[attribute].direction
        origin: dict[str, Any] = {"direction": "the model's own attribute"}
    else:
        train_x, train_y = opts.split("train", None)
        direction, used = class_direction(opts.model, train_x, train_y, positive, negative, seed=opts.seed)
        origin = {"direction": "made from 20 + 20 train images (paper A.2 recipe)", **used}
    images, labels = opts.test_split()
    keep = torch.isin(labels, torch.tensor(negative))
    if not bool(keep.any()):
        raise MetricError(f"edit_success_{attribute}: no test images of the negative classes {negative}")
    result = edit_success(
        opts.model,
        opts.classifier(),
        direction,
        images[keep],
        positive,
        negative,
        strength=opts.edit_strength,
        content_size=opts.content_size,
        batch_size=opts.batch_size,
    )
    return MetricResult(result.success_rate, {**result.to_dict(), "classes_from": source, **origin})
