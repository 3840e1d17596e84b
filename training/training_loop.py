"""The training loop: one function, sectioned, driven by the phases of ``objective.DCVAELoss``."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dcvae_tools.images import save_grid
from dcvae_tools.io_utils import atomic_write_text
from dcvae_tools.networks import build_network

from .data import InfiniteLoader, make_dataset
from .data.augment import augmentation_generator, random_translate
from .distributed import DistInfo, all_gather_cat, gather_objects, max_over_ranks
from .loss import FeatureQueue
from .objective import DCVAELoss, logit_path_parameters, moving_average_, scaled_step, training_autocast
from .options import OptionsError, TrainingOptions
from .progress_bar import TrainingProgress
from .run_state import (
    CHECKPOINT_NAME,
    OPTIONS_NAME,
    STATS_NAME,
    StatsLog,
    capture_rng_state,
    check_resume_options,
    check_resume_world_size,
    dropped_lines_note,
    kl_ramp_note,
    load_checkpoint,
    make_feature_queues,
    nothing_left_note,
    restore_trainer_state,
    saved_world_size,
    trainer_state,
    write_checkpoint,
)
from .state_file import TrainingDivergedError
from .stop_request import StopRequest, signal_name, stop_reason


def first_non_finite(networks: dict[str, nn.Module | None]) -> str | None:
    """The first weight or buffer (``"G.cell1.c1.weight"``) holding NaN or infinity, or None."""
    for net_name, net in networks.items():
        for name, tensor in (net.state_dict() if net is not None else {}).items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return f"{net_name}.{name}"
    return None


def _step(scaler: torch.amp.GradScaler, *optimizers: torch.optim.Optimizer | None) -> None:
    """Step each optimizer once, then update the grad scaler: one scaler update per phase.

    A phase's parameters that its loss does not use have no gradient (``None``), and Adam skips them, so
    their moments are not decayed by zero gradients. With fp16 every optimizer is stepped at most once
    between two ``update()`` calls, which GradScaler requires.
    """
    for opt in optimizers:
        if opt is not None:
            scaler.step(opt)
    scaler.update()


def training_iteration(
    objective: DCVAELoss,
    o: TrainingOptions,
    real: torch.Tensor,
    iteration: int,
    opt_E: torch.optim.Optimizer,
    opt_G: torch.optim.Optimizer,
    opt_D: torch.optim.Optimizer | None,
    scaler: torch.amp.GradScaler,
    queues: dict[str, FeatureQueue],
    G_ema: nn.Module,
    G: nn.Module,
    dist_info: DistInfo = DistInfo(),
    ids: torch.Tensor | None = None,
    logit_path: list[nn.Parameter] | None = None,
) -> dict[str, float]:
    """One iteration in the official update order; returns the phases' stats.

    Discriminator hinge step every iteration; every ``n_critic``-th iteration the adversarial (and/or
    reconstruction) encoder/decoder step, then the contrastive step on a fresh reconstruction, the queue
    update with keys (and their images' dataset indices ``ids``) gathered from every rank, and the decoder
    EMA update. ``logit_path``: the discriminator parameters whose contrastive step is scaled by
    ``o.contrastive_trunk_lr_scale`` (``objective.logit_path_parameters`` of the unwrapped discriminator).
    """
    if o.uses_contrastive and o.contrastive_trunk_lr_scale != 1 and logit_path is None:
        raise ValueError("contrastive_trunk_lr_scale needs the discriminator's logit_path parameters")
    step: dict[str, float] = {}
    objective.iteration = iteration
    if o.uses_adversarial and not o.encoder_only:
        opt_D.zero_grad(set_to_none=True)
        step.update(objective.accumulate_gradients("D", real))
        _step(scaler, opt_D)
    if iteration % o.n_critic == 0:
        if o.uses_adversarial or o.objective in ("vae", "vaegan"):
            opt_E.zero_grad(set_to_none=True)
            opt_G.zero_grad(set_to_none=True)
            step.update(objective.accumulate_gradients("Gmain", real))
            _step(scaler, opt_E if o.trains_encoder else None, None if o.encoder_only else opt_G)
        if o.uses_contrastive:
            for opt in (opt_E, opt_G, opt_D):
                opt.zero_grad(set_to_none=True)
            step.update(objective.accumulate_gradients("Gcon", real, ids))
            if o.encoder_only:
                _step(scaler, opt_E)
            else:
                with scaled_step(logit_path or [], o.contrastive_trunk_lr_scale):
                    _step(scaler, opt_E, opt_G, opt_D)
            gathered_ids = all_gather_cat(ids, dist_info) if ids is not None else None
            for layer, keys in objective.pending_keys.items():
                queues[layer].enqueue(all_gather_cat(keys.detach(), dist_info), gathered_ids)
        if not o.encoder_only:
            moving_average_(G_ema, G, o.ema)
    return step


def training_loop(
    options: TrainingOptions,  # validated training options (a preset plus overrides)
    run_dir: str | Path,  # where checkpoint, stats, snapshots and options go (created)
    *,
    device: str | torch.device = "cpu",  # "cpu", "cuda", "cuda:1"
    resume: bool = True,  # continue from run_dir/checkpoint.pt when it exists
    stop_after: int | None = None,  # stop at this iteration (checkpointing) even if total_iterations is larger
    dist_info: DistInfo = DistInfo(),  # rank and world size (see distributed.init_distributed)
    progress: bool = True,  # a rich progress bar on rank 0
    progress_fn: Callable[[int, dict[str, float]], None] | None = None,  # called after every log interval
    return_networks: bool = False,  # add the live networks to the summary (for notebooks and tests)
    resume_from: str | Path | None = None,  # when run_dir has no checkpoint: a run folder, release folder,
    # released name or Hub repo to continue (training/resume.py says what is taken from each)
    hub_options: dict[str, Any] | None = None,  # cache_dir / endpoint / local_files_only for resume_from
    handle_signals: bool = True,  # Ctrl-C / SIGTERM stop the run with a checkpoint (stop_request.py)
) -> dict[str, Any]:
    """Train a DC-VAE (or one of the paper's baselines) and keep the run folder up to date.

    Returns a summary with the final iteration, the last logged stats, the run folder, whether training is
    finished, and ``stopped_by``: the signal that stopped it early (``"SIGINT"``, ``"SIGTERM"``) or None. While
    it trains (with ``handle_signals``, on the main thread) the first SIGINT or SIGTERM ends it after the current
    iteration with a checkpoint; under torchrun every rank stops at the same iteration.
    """
    o = options.validate().check_time_limit()
    device = torch.device(device)
    run_dir = Path(run_dir)
    main = dist_info.is_main
    ckpt_path = run_dir / CHECKPOINT_NAME
    state: dict[str, Any] | None = load_checkpoint(ckpt_path) if resume and ckpt_path.is_file() else None
    if state is not None:
        check_resume_options(state["options"], o, ckpt_path)  # before anything is written
        check_resume_world_size(state, dist_info.world_size, ckpt_path)
    start = None
    if state is None and resume_from is not None:  # also before anything is written: a refusal leaves no folder
        from .resume import starting_point

        start = starting_point(resume_from, o, **(hub_options or {}))
        last = o.total_iterations if stop_after is None else min(o.total_iterations, stop_after)
        first = int(start.state["iteration"])
        if first >= last:
            raise OptionsError(
                f"{resume_from} is at iteration {first:,}, not below "
                + (f"--stop-after {last:,}" if last < o.total_iterations else f"total_iterations {last:,}")
                + f": a new run from it in {run_dir} would train nothing. Pass "
                + ("a --stop-after" if last < o.total_iterations else "--set total_iterations=N with N")
                + f" above {first:,}."
            )
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / OPTIONS_NAME, o.to_json())

    # ------------------------------------------------------------------ seeds and data
    torch.manual_seed(o.seed * 1000 + dist_info.rank)
    # the model's own content size, so training pixels are exactly what the toolkit feeds the model at use
    content = o.content_size or o.image_size
    dataset = make_dataset(o.dataset, "train", o.image_size, o.channels, o.data_root, content_size=content)
    loader = InfiniteLoader(
        dataset,
        o.batch_size,
        o.seed,
        rank=dist_info.rank,
        world_size=dist_info.world_size,
        num_workers=o.num_workers,
    )

    # ------------------------------------------------------------------ networks
    config = o.model_config()
    E = build_network(config, "encoder", spectral_norm=True).to(device)
    G = build_network(config, "decoder").to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    D = D_M = None
    if o.uses_discriminator:
        D = build_network(config, "discriminator", spectral_norm=True).to(device)
        D_M = copy.deepcopy(D).eval().requires_grad_(False)
    if o.channels_last:
        for m in (E, G, D, D_M, G_ema):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    queues = make_feature_queues(o, device)

    def adam(module: nn.Module) -> torch.optim.Optimizer:
        # fused Adam: one kernel per step instead of a loop over tensors (CPU and CUDA both have it)
        return torch.optim.Adam(module.parameters(), lr=o.lr, betas=o.betas, fused=device.type in ("cpu", "cuda"))

    opt_E, opt_G = adam(E), adam(G)
    opt_D = adam(D) if D is not None else None
    # fp16 needs loss scaling on every device (CPU autocast supports float16 too); bf16 and fp32 do not
    scaler = torch.amp.GradScaler(device.type, enabled=o.amp == "fp16")

    # ------------------------------------------------------------------ resume
    iteration = 0
    resumed_own_checkpoint = state is not None
    if start is not None:
        state = start.state
        if main:  # stderr: stdout carries only the command's summary (JSON), for scripts that read it
            print(start.note, file=sys.stderr)
            if "rng" in state and saved_world_size(state) != dist_info.world_size:  # a weights-only source has none
                print(f"the source was trained by {saved_world_size(state)} process(es) and this run has "
                      f"{dist_info.world_size}: images per iteration, random streams and data order differ from "
                      "the source's own continuation", file=sys.stderr)
    if main and not resumed_own_checkpoint:  # a new run, or one continuing another run's state
        note = kl_ramp_note(o, int(state["iteration"]) if state is not None else 0)
        if note is not None:
            print(note, file=sys.stderr)
    networks = {"E": E, "G": G, "G_ema": G_ema, "D": D, "D_M": D_M}
    optimizers = {"opt_E": opt_E, "opt_G": opt_G, "opt_D": opt_D}
    if state is not None:
        restore_trainer_state(
            state, networks=networks, optimizers=optimizers, scaler=scaler, queues=queues, loader=loader,
            rank=dist_info.rank, device=device,
        )
        iteration = int(state["iteration"])
        note = nothing_left_note(state["options"], iteration, o, run_dir) if "options" in state else None
        if main and note is not None:
            print(note, file=sys.stderr)

    if o.encoder_only:
        # the encoder learns to invert the decoder a release ships: the EMA copy, normalising by its running
        # statistics as at inference; neither it nor the discriminator changes (eval: no power iterations either).
        # The momentum copy that makes the contrastive keys keeps following the fixed discriminator
        G.load_state_dict(G_ema.state_dict())
        for net in (G, D):
            if net is not None:
                net.eval().requires_grad_(False)

    # ------------------------------------------------------------------ distributed wrappers
    E_t, G_t, D_t = E, G, D
    if dist_info.enabled:
        ddp = nn.parallel.DistributedDataParallel
        ids = [device.index] if device.type == "cuda" else None
        E_t = ddp(E, device_ids=ids)
        G_t = G if o.encoder_only else ddp(G, device_ids=ids)  # DDP refuses a module with nothing to train
        if D is not None and not o.encoder_only:
            # each phase uses a different part of the discriminator (the adversarial head in one, the
            # contrastive heads in another): DDP must look for the parameters a phase leaves unused
            D_t = ddp(D, device_ids=ids, find_unused_parameters=True)
        if iteration == 0:  # DDP broadcast rank 0's initial weights; the EMA copy follows them
            G_ema.load_state_dict(G.state_dict())
    if D is not None and (state is None or "D_M" not in state):
        # a new run, or a source that never trained a momentum copy (a VAE/GAN; a release without its training
        # state): the key discriminator starts as D, after DDP gave every rank rank 0's
        D_M.load_state_dict(D.state_dict())
    if o.compile:
        E_t, G_t = torch.compile(E_t), torch.compile(G_t)
        D_t = torch.compile(D_t) if D_t is not None else None

    autocast = training_autocast(device, o.amp, announce=main)
    objective = DCVAELoss(o, E_t, G_t, D_t, D_M, queues, autocast, scale=scaler.scale)
    logit_path = logit_path_parameters(D) if D is not None else None  # the unwrapped module's own parameters

    saved_at = iteration if ckpt_path.is_file() else None  # the checkpoint a divergence leaves in place

    def save_checkpoint() -> None:
        nonlocal saved_at
        check_finite()  # never replace a good checkpoint with a diverged one
        rng = gather_objects(capture_rng_state(device), dist_info)  # every rank's own CPU and CUDA state
        saved_at = iteration
        if not main:
            return
        state = trainer_state(
            networks=networks, optimizers=optimizers, scaler=scaler, queues=queues, loader=loader, rng=rng
        )
        write_checkpoint({"iteration": iteration, **state, "options": o.to_json()}, ckpt_path)

    def check_finite() -> None:
        """Stop a run whose weights went NaN or infinite (every rank holds the same weights, so all stop here)."""
        broken = first_non_finite(networks)
        if broken is None:
            return
        kept = (f"{ckpt_path} still holds iteration {saved_at}: resume from it with a lower learning rate "
                "(--set lr=...) or another --set amp=..." if saved_at is not None else "no checkpoint was written")
        raise TrainingDivergedError(
            f"training diverged by iteration {iteration}: {broken} holds NaN or infinite values; {kept}"
        )

    # fixed inputs for the snapshot grids
    snap_z = torch.randn(64, o.latent_dim, generator=torch.Generator().manual_seed(o.seed)).clamp(-1, 1).to(device)
    snap_x = torch.stack([dataset[i][0] for i in range(min(32, len(dataset)))]).to(device)

    def snapshot() -> None:
        if not main:
            return
        snaps = run_dir / "snapshots"
        snaps.mkdir(exist_ok=True)
        E.eval()
        with torch.no_grad():
            samples = G_ema(snap_z).float()
            recon = G_ema(E(snap_x)[0]).float()
        E.train()
        save_grid(
            samples.cpu(),
            snaps / f"samples-{iteration:07d}.png",
            nrow=8,
            content_size=o.content_size,
            upscale=2,
        )
        grid = torch.cat([snap_x[:16], recon[:16], snap_x[16:32], recon[16:32]]).cpu()
        save_grid(
            grid,
            snaps / f"reconstructions-{iteration:07d}.png",
            nrow=16,
            content_size=o.content_size,
            upscale=2,
        )

    def network_snapshot() -> None:
        """The release-format model at this iteration (for curves of metrics against images seen)."""
        if not main:
            return
        from dcvae_tools import save_pretrained

        from .export import inference_model

        with torch.random.fork_rng(devices=[]):  # building the networks must not move the run's random stream
            model = inference_model(o, E.state_dict(), G_ema.state_dict(), iterations=iteration)
        save_pretrained(model, run_dir / "network-snapshots" / f"iteration-{iteration:07d}")

    # ------------------------------------------------------------------ the loop
    end = min(o.total_iterations, stop_after) if stop_after is not None else o.total_iterations
    # the run goes on from `iteration`: lines past it are from an attempt that died before its next checkpoint
    # (in a --resume-from run's folder, one that died before its first)
    log = StatsLog(run_dir / STATS_NAME if main else None, after=iteration)
    if log.dropped:
        print(dropped_lines_note(log.dropped, iteration), file=sys.stderr)
    last: dict[str, float] = {}
    bar = None
    stopped_by: str | None = None
    with StopRequest(enabled=handle_signals, announce=main) as stop:  # Ctrl-C / SIGTERM: checkpoint, return
        try:
            if main and progress:  # inside the try, so that the bar is stopped whatever happens
                bar = TrainingProgress(o.preset, 0, end, iteration)
            while iteration < end:
                real = next(loader)[0].to(device, non_blocking=True)
                if o.translate:
                    draws = augmentation_generator(o.seed, iteration, dist_info.rank)
                    real = random_translate(real, o.translate, draws)
                if o.channels_last:
                    real = real.contiguous(memory_format=torch.channels_last)
                ids = loader.last_indices.to(device)
                step = training_iteration(
                    objective, o, real, iteration, opt_E, opt_G, opt_D, scaler, queues, G_ema, G, dist_info, ids,
                    logit_path,
                )
                iteration += 1
                log.add(step, len(real) * dist_info.world_size)
                if iteration % o.log_every == 0 or iteration == end:
                    last = log.flush(iteration)
                    check_finite()
                    if bar is not None:
                        bar.log(iteration, last)
                    if progress_fn is not None:
                        progress_fn(iteration, last)
                elif bar is not None:
                    bar.advance(iteration)
                if iteration % o.snapshot_every == 0 or iteration == end:
                    snapshot()
                if o.network_snapshot_every and iteration % o.network_snapshot_every == 0:
                    network_snapshot()
                out_of_time = o.max_minutes is not None and log.minutes() >= o.max_minutes
                reason = max_over_ranks(stop_reason(out_of_time, stop), dist_info)  # every rank: same iteration
                if iteration % o.checkpoint_every == 0 or iteration == end or reason:
                    save_checkpoint()
                if reason:
                    stopped_by = signal_name(reason) if iteration < end else None  # the last one: finished anyway
                    break
        finally:
            if bar is not None:
                bar.stop()
            log.close()
    summary = {
        "iteration": iteration,
        "stats": last,
        "run_dir": str(run_dir),
        "finished": iteration >= o.total_iterations,
        "stopped_by": stopped_by,
    }
    if return_networks:
        summary["networks"] = {"E": E, "G": G, "G_ema": G_ema, "D": D, "D_M": D_M}
    return summary
