"""Refined inversion's default settings and limits, kept free of torch so the command line can check
``--refine`` values (and describe the defaults) before it loads torch."""

from __future__ import annotations

DEFAULT_LR = 0.05
"""Adam's step size, in latent units (the bundled models' latents have a spread of about 1 per dimension)."""

DEFAULT_ANCHOR_WEIGHT = 1e-2
"""Weight of the mean squared distance of the latent from its posterior mean (see :mod:`.refine`)."""

MAX_REFINE_STEPS = 100_000
"""The most steps one call accepts (a guard against typos; 50-100 is the useful range)."""
