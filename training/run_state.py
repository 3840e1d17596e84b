"""A run folder's training state, shared by the plain and the progressive training loop.

The checkpoint (``checkpoint.pt``: tensors and plain containers only, read with ``weights_only=True``),
each rank's random state, the resume option check, the contrastive queues and the ``stats.jsonl`` log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch import nn

from dcvae_tools.io_utils import atomic_write

from .loss import FeatureQueue
from .options import OptionsError, TrainingOptions

CHECKPOINT_NAME = "checkpoint.pt"
OPTIONS_NAME = "training_options.json"
STATS_NAME = "stats.jsonl"

RESUME_SAFE_OPTIONS = frozenset(
    {"total_iterations", "max_minutes", "log_every", "snapshot_every", "checkpoint_every", "network_snapshot_every",
     "num_workers", "data_root", "description", "channels_last"}
)
"""Options a run may change when it resumes: its length and bookkeeping, not what or how it trains. Memory
layout (``channels_last``) is among them: the same arithmetic in another order, as on another machine, so a
continuation in the other layout matches an uninterrupted run to float rounding, not bit for bit."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def write_checkpoint(state: Mapping[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (an interrupted save leaves the previous checkpoint intact)."""
    with atomic_write(path) as tmp:
        torch.save(dict(state), tmp)


def capture_rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's random state: the CPU generator and, on CUDA, the current device's generator."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(checkpoint: Mapping[str, Any], rank: int, device: torch.device) -> None:
    """Give this rank back its own saved random state (a rank the checkpoint did not have keeps its seed).

    ``checkpoint["rng"]`` is a list with one ``capture_rng_state`` dict per rank; older checkpoints hold a
    list of CPU states or a single CPU state, with the CUDA state in ``checkpoint["cuda_rng"]``.
    """
    saved = checkpoint["rng"]
    if isinstance(saved, torch.Tensor):
        saved = [saved]
    if rank >= len(saved):
        return
    mine = saved[rank]
    if isinstance(mine, torch.Tensor):
        mine = {"cpu": mine, **({"cuda": checkpoint["cuda_rng"]} if "cuda_rng" in checkpoint else {})}
    torch.set_rng_state(mine["cpu"])
    if device.type == "cuda" and "cuda" in mine:
        torch.cuda.set_rng_state(mine["cuda"], device)


def saved_world_size(checkpoint: Mapping[str, Any]) -> int:
    """How many processes trained a checkpoint (one saved random state each)."""
    saved = checkpoint.get("rng")
    return len(saved) if isinstance(saved, list | tuple) else 1


def check_resume_world_size(checkpoint: Mapping[str, Any], world_size: int, where: Path) -> None:
    """Refuse to resume a run with another number of processes: each process has its own batch, random state
    and share of the data, so the run would not go on as it trained."""
    saved = saved_world_size(checkpoint)
    if saved != world_size:
        how = "without torchrun" if saved == 1 else f"with `torchrun --nproc-per-node {saved}`"
        raise OptionsError(
            f"cannot resume {where} with {world_size} process(es): it was trained by {saved} (each with its own "
            f"batch, random state and share of the data). Resume it {how}, or start a new run from it with "
            f"--resume-from."
        )


def check_resume_options(saved_json: str, options: TrainingOptions, where: Path) -> None:
    """Refuse to resume a run with options that change its training (listing each difference)."""
    saved, mine = json.loads(saved_json), options.to_dict()
    # An option newer than the checkpoint is missing from it; the run trained as its default does (every new
    # option's default is the behaviour from before it existed), so a resume may not set it to anything else.
    defaults = TrainingOptions().to_dict()

    def recorded(key: str) -> str:
        return f"{saved[key]!r} in the checkpoint" if key in saved else f"{defaults[key]!r} (unrecorded: its default)"

    differ = [
        f"{key}: {recorded(key)}, {mine[key]!r} now"
        for key in mine
        if key not in RESUME_SAFE_OPTIONS and saved.get(key, defaults[key]) != mine[key]
    ]
    if differ:
        raise OptionsError(
            f"cannot resume {where} with other training options ({'; '.join(differ)}). Resume with the options it "
            f"was started with, or start a new run from it with --resume-from. Safe to change on resume: "
            f"{', '.join(sorted(RESUME_SAFE_OPTIONS))}."
        )


def nothing_left_note(saved_json: str, iteration: int, options: TrainingOptions, where: Path) -> str | None:
    """Why resuming does nothing, when the checkpoint is already at or past ``options.total_iterations``.

    A run continued with ``--set total_iterations=N`` records N in its checkpoint; resuming it later with the
    preset's smaller total would otherwise end at once with nothing trained and no word why.
    """
    if iteration < options.total_iterations:
        return None
    recorded = json.loads(saved_json).get("total_iterations")
    was = (
        f" (the run was last set to {recorded:,})"
        if isinstance(recorded, int) and recorded != options.total_iterations
        else ""
    )
    return (
        f"{where} is at iteration {iteration:,}, not below total_iterations {options.total_iterations:,}{was}: "
        f"nothing to train. To train further, pass --set total_iterations=N with N above {iteration:,}."
    )


def kl_ramp_note(options: TrainingOptions, first_iteration: int) -> str | None:
    """What a run starting (or continuing another run's state) at ``first_iteration`` will not see of its KL
    ramp: the part before it, or the part after ``total_iterations``. None when it trains the whole ramp."""
    o = options
    if o.kl_ramp_to is None:
        return None
    span = f"the KL ramp ({o.kl_weight:.3g} at iteration {o.kl_ramp_start:,}, {o.kl_ramp_to:.3g} at {o.kl_ramp_end:,})"
    parts = []
    if first_iteration > o.kl_ramp_start:
        parts.append(
            f"{span} began before iteration {first_iteration:,}, where this run starts: its first weight is "
            f"{o.kl_weight_at(first_iteration):.3g}"
        )
    if o.kl_ramp_end > o.total_iterations:
        parts.append(
            f"{span} ends after total_iterations {o.total_iterations:,}: the run's last iteration trains at weight "
            f"{o.kl_weight_at(o.total_iterations - 1):.3g}"
        )
    return "; ".join(parts) or None


def make_feature_queues(o: TrainingOptions, device: torch.device) -> dict[str, FeatureQueue]:
    """One queue of negative keys per contrastive layer (none when the objective has no contrastive term)."""
    if not o.uses_contrastive:
        return {}
    layers = o.contrastive_layers
    return {layer: FeatureQueue(o.queue_size, 16, seed=o.seed + i).to(device) for i, layer in enumerate(layers)}


def trainer_state(
    *,
    networks: Mapping[str, nn.Module | None],
    optimizers: Mapping[str, torch.optim.Optimizer | None],
    scaler: torch.amp.GradScaler,
    queues: Mapping[str, FeatureQueue],
    loader: Any,
    rng: Any,
) -> dict[str, Any]:
    """The state both loops checkpoint: networks and optimizers by name (None ones left out), the grad scaler,
    the queues, the data loader's position and the random state ``rng``."""
    return {
        **{name: net.state_dict() for name, net in networks.items() if net is not None},
        **{name: opt.state_dict() for name, opt in optimizers.items() if opt is not None},
        "scaler": scaler.state_dict(),
        "queues": {layer: queue.state_dict() for layer, queue in queues.items()},
        "loader": loader.state_dict(),
        "rng": rng,
    }


_OPTIONS_HYPERPARAMETERS = ("lr", "betas")
"""Optimizer group settings that come from the run's options, not from a loaded state."""


def restore_trainer_state(
    state: Mapping[str, Any],
    *,
    networks: Mapping[str, nn.Module | None],
    optimizers: Mapping[str, torch.optim.Optimizer | None],
    scaler: torch.amp.GradScaler,
    queues: Mapping[str, FeatureQueue],
    loader: Any,
    rank: int,
    device: torch.device,
    required: tuple[str, ...] = ("E", "G", "G_ema"),
) -> None:
    """Load what :func:`trainer_state` saved into live objects.

    Whatever ``state`` lacks keeps its fresh value (a run continued from a release has networks but no
    optimizer, queue or loader state), except the networks named in ``required``: a state without them is
    refused rather than resumed from random weights. Optimizers take their moments and step counts from
    ``state`` and keep the learning rate and betas they were built with: the run's options, not the source's.
    """
    missing = [name for name in required if name not in state]
    if missing:
        raise OptionsError(f"the training state has no {', '.join(missing)}: it is incomplete or not a checkpoint")
    for name, net in networks.items():
        if net is not None and name in state:
            net.load_state_dict(state[name])
    for name, opt in optimizers.items():
        if opt is not None and name in state:
            # an optimizer's state_dict carries its group settings: the hyperparameters the options set win, so a
            # continuation with --set lr=... trains at that rate (an exact continuation has the same values). The
            # implementation flags (fused, capturable) stay the state's: torch places the loaded step counts by them
            configured = [{key: group[key] for key in _OPTIONS_HYPERPARAMETERS} for group in opt.param_groups]
            opt.load_state_dict(state[name])
            for group, values in zip(opt.param_groups, configured, strict=True):
                group.update(values)
            match_parameter_layouts(opt)
    for layer, queue in queues.items():
        if layer in state.get("queues", {}):
            queue.load_state_dict(state["queues"][layer])
    if scaler.is_enabled() and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if "loader" in state:
        loader.load_state_dict(state["loader"])
    if "rng" in state:
        restore_rng_state(state, rank, device)


def match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded per-element optimizer state (Adam's moments) its parameter's memory layout, values kept.

    A state saved by a channels-last run and loaded into a contiguous one (or the other way round; a
    ``--resume-from`` may change ``channels_last``, and a resume may too) keeps the saved strides. torch's fused
    CPU Adam (2.14) pairs a parameter and its moments by position in memory, not by index, so it would apply
    each element's moments to another element: the updates are wrong, silently, until the stale moments have
    decayed (by beta2 = 0.9 a step at the presets' betas). A copy in the parameter's layout avoids that.
    """
    for param, param_state in optimizer.state.items():
        for key, value in param_state.items():
            if (isinstance(value, torch.Tensor) and value.shape == param.shape and value.dim() > 1
                    and value.stride() != param.stride()):
                param_state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _drop_lines_past(path: Path, iteration: int) -> int:
    """Rewrite the JSON-lines log ``path`` (atomically) without the lines whose iteration is past ``iteration``."""
    if not path.is_file():
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)

    def past(line: str) -> bool:
        try:
            return int(json.loads(line)["iteration"]) > iteration
        except (ValueError, KeyError, TypeError):  # a line cut short by the crash, or not a log line: keep it
            return False

    kept = [line for line in lines if not past(line)]
    if len(kept) < len(lines):
        with atomic_write(path) as tmp:
            tmp.write_text("".join(kept), encoding="utf-8")
    return len(lines) - len(kept)


def dropped_lines_note(dropped: int, iteration: int) -> str:
    """What a resumed run says when :class:`StatsLog` dropped log lines past its iteration."""
    return (f"{STATS_NAME}: dropped {dropped} line(s) past iteration {iteration:,}, logged after the last "
            "checkpoint by a run that stopped without writing one; those iterations train again")


class StatsLog:
    """Averages each iteration's stats over a log interval and appends them to ``stats.jsonl``.

    Each line holds the iteration, the interval's mean of every stat, any extra fields, the throughput
    (``Perf/images_per_s``) and the minutes since the log was opened (``Perf/elapsed_min``).

    A run resumed at iteration ``after`` first drops the lines past it: a run that died after its last
    checkpoint logged iterations that the resumed run trains again, and the log should list each one once.
    :attr:`dropped` says how many lines went.
    """

    def __init__(self, path: Path | None, after: int | None = None) -> None:
        self.dropped = _drop_lines_past(path, after) if path is not None and after is not None else 0
        self._file: IO[str] | None = path.open("a", encoding="utf-8") if path is not None else None
        self._window: dict[str, list[float]] = {}
        self._images = 0
        self.started = self._since = time.perf_counter()

    def add(self, stats: Mapping[str, float], images: int) -> None:
        for key, value in stats.items():
            self._window.setdefault(key, []).append(value)
        self._images += images

    def minutes(self) -> float:
        return (time.perf_counter() - self.started) / 60

    def flush(self, iteration: int, extra: Mapping[str, float] | None = None) -> dict[str, float]:
        """Close the interval: write its line (when the log has a file) and return what it holds."""
        now = time.perf_counter()
        line = {key: sum(values) / len(values) for key, values in self._window.items()}
        line.update(extra or {})
        line["Perf/images_per_s"] = self._images / max(now - self._since, 1e-9)
        line["Perf/elapsed_min"] = (now - self.started) / 60
        self._window, self._images, self._since = {}, 0, now
        if self._file is not None:
            self._file.write(json.dumps({"iteration": iteration, **line}) + "\n")
            self._file.flush()
        return line

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
