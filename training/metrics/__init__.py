"""Evaluation metrics for DC-VAE checkpoints: Frechet distances, reconstruction, probes, perceptual, edits.

Entry point: :func:`training.evaluate.evaluate`. The registry lives in :mod:`.metric_main`; every metric file
names the reference implementation it matches. Feature networks are named in reports ("FID-Inception",
"FD-Lite0", "FD-classifier") because their numbers are not interchangeable.
"""

from __future__ import annotations

from .frechet import FeatureAccumulator, feature_statistics, frechet_distance, load_statistics, save_statistics
from .metric_main import (
    MetricError,
    MetricOptions,
    MetricOutcome,
    MetricResult,
    calc_metric,
    is_valid_metric,
    list_metrics,
    register_metric,
    register_metric_family,
    resolve_metric,
)
from .probe import ProbeResult, latent_probe, linear_probe, pixel_probe
from .reconstruction import mse_01, psnr_from_mse, reconstruction_errors

__all__ = [
    "FeatureAccumulator",
    "MetricError",
    "MetricOptions",
    "MetricOutcome",
    "MetricResult",
    "ProbeResult",
    "calc_metric",
    "feature_statistics",
    "frechet_distance",
    "is_valid_metric",
    "latent_probe",
    "linear_probe",
    "list_metrics",
    "load_statistics",
    "mse_01",
    "pixel_probe",
    "psnr_from_mse",
    "reconstruction_errors",
    "register_metric",
    "register_metric_family",
    "resolve_metric",
    "save_statistics",
]
