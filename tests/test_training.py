"""Training: a tiny preset on real Fashion-MNIST, exact resume, DDP on gloo, export -> load_model."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from ranks import launch_two_ranks

from dcvae_tools import load_model
from dcvae_tools.fast import cpu_has_native_bfloat16
from dcvae_tools.publish import manifest_entry
from training.export import export_run, model_from_run
from training.objective import training_precision
from training.options import OptionsError, TrainingOptions
from training.presets import all_presets, get_preset
from training.training_loop import CHECKPOINT_NAME, load_checkpoint, training_loop


def tiny(**changes):
    return get_preset("tiny").override(
        **{"log_every": 1, "snapshot_every": 1000, "checkpoint_every": 1000, **changes}
    )


def _params(state: dict) -> dict[str, torch.Tensor]:
    return {
        f"{net}.{k}": v
        for net in ("E", "G", "D", "G_ema", "D_M")
        if net in state
        for k, v in state[net].items()
    }


def test_tiny_preset_trains_on_real_data_with_finite_losses(tmp_path):
    logged = []
    summary = training_loop(
        tiny(total_iterations=24), tmp_path / "run", progress=False, progress_fn=lambda i, s: logged.append(s)
    )
    assert summary["iteration"] == 24 and summary["finished"]
    losses = {k: v for s in logged for k, v in s.items() if k.startswith("Loss/")}
    assert {
        "Loss/D/hinge",
        "Loss/G/hinge",
        "Loss/G/kl",
        "Loss/contrastive/b1",
        "Loss/contrastive/final",
    } <= set(losses)
    assert all(math.isfinite(v) for s in logged for v in s.values())
    lines = (tmp_path / "run" / "stats.jsonl").read_text().splitlines()
    assert len(lines) == 24 and json.loads(lines[-1])["iteration"] == 24
    assert (tmp_path / "run" / "snapshots" / "samples-0000024.png").is_file()
    options = json.loads((tmp_path / "run" / "training_options.json").read_text())
    assert options["preset"] == "tiny"


def test_a_run_whose_weights_go_nan_stops_and_keeps_its_last_good_checkpoint(tmp_path):
    from training.run_state import write_checkpoint
    from training.state_file import TrainingDivergedError

    run = tmp_path / "run"
    training_loop(tiny(total_iterations=2), run, progress=False)
    state = load_checkpoint(run / CHECKPOINT_NAME)
    name = next(k for k, v in state["G"].items() if v.is_floating_point())
    state["G"][name] = state["G"][name] * float("nan")  # as a diverged step would leave it
    write_checkpoint(state, run / CHECKPOINT_NAME)
    before = (run / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(TrainingDivergedError, match=r"diverged by iteration 3: \w+\.\S+ holds NaN.*still holds "
                                                   "iteration 2"):
        training_loop(tiny(total_iterations=6, checkpoint_every=1), run, progress=False)
    assert (run / CHECKPOINT_NAME).read_bytes() == before  # not replaced by a diverged state


def test_bf16_request_trains_in_float32_on_a_cpu_without_native_bfloat16(tmp_path, capsys):
    cpu = torch.device("cpu")
    assert training_precision(cpu, "bf16", native_bfloat16=True) == ("bf16", None)
    amp, note = training_precision(cpu, "bf16", native_bfloat16=False)
    assert amp == "none" and "no native bfloat16" in note and "float32" in note
    assert training_precision(cpu, "fp16", native_bfloat16=False) == ("fp16", None)
    assert training_precision(torch.device("cuda"), "bf16", native_bfloat16=False) == ("bf16", None)
    # the loop applies this CPU's answer, says so, and keeps the request in the run's options
    training_loop(tiny(total_iterations=2, amp="bf16"), tmp_path / "run", progress=False)
    assert ("trains in float32" in capsys.readouterr().err) == (not cpu_has_native_bfloat16())
    assert json.loads((tmp_path / "run" / "training_options.json").read_text())["amp"] == "bf16"


def _steps_by_module(optimizer_state: dict, module: torch.nn.Module) -> dict[str, set[int]]:
    """Adam's per-parameter step counts, grouped by the parameter's top-level submodule name."""
    names = [name for name, _ in module.named_parameters()]
    counts: dict[str, set[int]] = {}
    for index, name in enumerate(names):
        state = optimizer_state["state"].get(index)
        counts.setdefault(name.split(".")[0], set()).add(int(state["step"]) if state else 0)
    return counts


def test_each_parameter_group_is_updated_only_by_the_phases_that_use_it(tmp_path):
    """6 iterations at n_critic 2: the discriminator phase runs 6 times, Gmain and Gcon 3 times each.

    The adversarial head is used by the D phase only (6 steps), the block-1 contrastive head by Gcon only
    (3), the trunk and the "final" feature by both (9); the encoder by Gmain and Gcon (6). A zero gradient
    would still count as an Adam step (and decay the moments), so every count here is a real update.
    """
    summary = training_loop(tiny(total_iterations=6), tmp_path / "run", progress=False, return_networks=True)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    d_steps = _steps_by_module(state["opt_D"], summary["networks"]["D"])
    assert d_steps == {"trunk": {9}, "final": {9}, "head": {6}, "b1_conv": {3}, "b1_linear": {3}}
    e_steps = _steps_by_module(state["opt_E"], summary["networks"]["E"])
    assert set().union(*e_steps.values()) == {6}
    assert int(state["queues"]["b1"]["pointer"]) == (3 * 8) % 64  # 3 contrastive steps of 8 keys
    ids = state["queues"]["b1"]["ids"]
    assert (ids[:24] >= 0).all() and (ids[24:] == -1).all()  # every enqueued key knows its image


def _objective_and_networks(o):
    """Encoder, decoder, discriminator and a DCVAELoss over them (with a frozen key discriminator), for ``o``."""
    import contextlib

    from dcvae_tools.networks import build_network
    from training.loss import FeatureQueue
    from training.objective import DCVAELoss

    config = o.model_config()
    E = build_network(config, "encoder", spectral_norm=True)
    G = build_network(config, "decoder")
    D = build_network(config, "discriminator", spectral_norm=True)
    D_M = build_network(config, "discriminator", spectral_norm=True).requires_grad_(False)
    queues = {layer: FeatureQueue(o.queue_size, 16, seed=1) for layer in o.contrastive_layers}
    objective = DCVAELoss(o, E, G, D, D_M, queues, contextlib.nullcontext)
    return E, G, D, objective


def test_phases_put_gradients_exactly_where_their_loss_reaches():
    """Known answer per phase: which networks (and discriminator heads) get a non-zero gradient."""
    o = tiny()
    torch.manual_seed(0)
    E, G, D, objective = _objective_and_networks(o)
    real = torch.rand(8, 1, 32, 32) * 2 - 1

    def gradients(phase):
        for net in (E, G, D):
            net.zero_grad(set_to_none=True)
        objective.accumulate_gradients(phase, real, torch.arange(8))
        got = {}
        for net_name, net in (("E", E), ("G", G), ("D", D)):
            for name, param in net.named_parameters():
                key = f"{net_name}.{name.split('.')[0]}" if net_name == "D" else net_name
                nonzero = param.grad is not None and bool(param.grad.abs().sum() > 0)
                got[key] = got.get(key, False) or nonzero
        return {k for k, v in got.items() if v}

    assert gradients("D") == {"D.trunk", "D.final", "D.head"}
    assert gradients("Gmain") == {"E", "G"}  # the discriminator's weights are frozen in this phase
    assert gradients("Gcon") == {"E", "G", "D.trunk", "D.final", "D.b1_conv", "D.b1_linear"}


@pytest.mark.parametrize(
    "decoder_batch, expected",
    [
        # per phase, the batch size of each decoder call: prior samples (4) and reconstructions (8)
        ("separate", {"D": [8, 8], "Gmain": [8, 4], "Gcon": [8]}),
        ("joint", {"D": [16], "Gmain": [12], "Gcon": [12]}),
    ],
)
def test_decoder_batch_decides_which_latents_share_the_decoders_batch_statistics(decoder_batch, expected):
    o = tiny(decoder_batch=decoder_batch, gen_batch_size=4)
    torch.manual_seed(0)
    _, G, _, objective = _objective_and_networks(o)
    calls: list[int] = []
    G.register_forward_hook(lambda module, args, out: calls.append(len(out)))
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    for phase, sizes in expected.items():
        calls.clear()
        stats = objective.accumulate_gradients(phase, real, torch.arange(8))
        assert calls == sizes, phase
        assert all(math.isfinite(v) for v in stats.values())


@pytest.mark.parametrize("decoder_batch", ["separate", "joint"])
def test_prior_clamp_bounds_the_prior_draws_and_only_them(decoder_batch):
    real = torch.rand(8, 1, 32, 32) * 2 - 1

    def prior_and_posterior(clamp):
        torch.manual_seed(0)
        _, G, _, objective = _objective_and_networks(
            tiny(decoder_batch=decoder_batch, gen_batch_size=4, prior_clamp=clamp)
        )
        inputs: list[torch.Tensor] = []
        G.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach().clone()))
        objective.accumulate_gradients("Gmain", real, torch.arange(8))
        z = torch.cat(inputs)  # separate: the reconstructions' call comes first
        return (z[:4], z[4:]) if decoder_batch == "joint" else (z[8:], z[:8])

    prior, posterior = prior_and_posterior(0.5)
    assert prior.abs().max() == 0.5  # draws beyond the bound sit on it
    assert posterior.abs().max() > 0.5
    unclamped, _ = prior_and_posterior(None)
    assert unclamped.abs().max() > 0.5
    assert torch.equal(prior, unclamped.clamp(-0.5, 0.5))  # the same draws, clamped: the random stream is kept


def test_prior_clamp_needs_a_positive_bound_and_prior_draws():
    with pytest.raises(OptionsError, match="prior_clamp=0"):
        tiny(prior_clamp=0).validate()
    with pytest.raises(OptionsError, match="prior_clamp=True"):
        tiny(prior_clamp=True).validate()
    with pytest.raises(OptionsError, match="objective='vae' decodes no prior draws"):
        tiny(objective="vae", prior_clamp=1.0).validate()


def test_max_minutes_must_be_a_positive_number_or_null(tmp_path):
    # it is compared with the wall time only after the first iteration: a bad value must stop the run before it starts
    assert tiny(max_minutes=None).check_time_limit().max_minutes is None
    assert tiny(max_minutes=0.5).check_time_limit().max_minutes == 0.5
    for bad in ("abc", -5, 0, float("nan"), True):
        options = tiny(max_minutes=bad)  # readable (a checkpoint's saved options may hold any limit) ...
        with pytest.raises(OptionsError, match=r"max_minutes=.*must be a positive number of minutes"):
            training_loop(options, tmp_path / "run", progress=False)  # ... but no run starts with it
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("decoder_batch", ["separate", "joint"])
@pytest.mark.parametrize("phase", ["D", "Gmain"])
def test_prior_sample_weight_lands_on_the_prior_samples_logits(phase, decoder_batch):
    """Known answer: the hinge loss recomputed from the discriminator's logits, with the rows that show decoded prior
    draws (found by value: the phase's first random draws) weighted w and the reconstructions 1 - w."""
    weight, n_prior = 0.8, {"D": 8, "Gmain": 4}[phase]
    options = tiny(decoder_batch=decoder_batch, gen_batch_size=4, prior_sample_weight=weight)
    torch.manual_seed(0)
    _, G, D, objective = _objective_and_networks(options)
    decoded: list[tuple[torch.Tensor, torch.Tensor]] = []
    scored: list[tuple[torch.Tensor, torch.Tensor]] = []
    G.register_forward_hook(lambda module, args, out: decoded.append((args[0].detach(), out.detach())))
    D.register_forward_hook(lambda module, args, out: scored.append((args[0].detach(), out[0].detach().flatten())))
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    torch.manual_seed(1)
    prior_z = torch.randn(n_prior, options.latent_dim)  # what the phase draws first
    torch.manual_seed(1)
    stats = objective.accumulate_gradients(phase, real, torch.arange(8))

    latents, images = (torch.cat(parts) for parts in zip(*decoded, strict=True))
    prior_images = [images[(latents == z).all(1)][0] for z in prior_z]
    ((scored_images, logits),) = scored  # one discriminator call per phase
    rows = list(scored_images)
    is_prior = torch.tensor([any(torch.equal(r, p) for p in prior_images) for r in rows])
    is_real = torch.tensor([any(torch.equal(r, x) for x in real) for r in rows])
    assert int(is_prior.sum()) == n_prior and not (is_prior & is_real).any()
    recon = ~is_prior & ~is_real
    if phase == "D":
        expected = (
            F.relu(1 - logits[is_real]).mean()
            + weight * F.relu(1 + logits[is_prior]).mean()
            + (1 - weight) * F.relu(1 + logits[recon]).mean()
        )
        assert stats["Loss/D/hinge"] == pytest.approx(expected.item(), rel=1e-5)
    else:
        expected = -(weight * logits[is_prior].mean() + (1 - weight) * logits[recon].mean())
        assert int(recon.sum()) == 8
        assert stats["Loss/G/hinge"] == pytest.approx(expected.item(), rel=1e-5)


def test_prior_sample_weight_needs_a_split_and_both_fake_terms():
    for bad in (0, 1, 1.5):
        with pytest.raises(OptionsError, match="prior_sample_weight"):
            tiny(prior_sample_weight=bad).validate()
    for bad in (True, "0.7"):  # what a hand-edited training_options.json could hold
        with pytest.raises(OptionsError, match=r"prior_sample_weight=.*strictly between 0 and 1"):
            TrainingOptions.from_dict({**tiny().to_dict(), "prior_sample_weight": bad})
    for objective in ("vae", "gan", "dcvae-no-set"):
        with pytest.raises(OptionsError, match=f"objective='{objective}' has no pair of fake terms"):
            tiny(objective=objective, prior_sample_weight=0.75).validate()
    tiny(objective="vaegan", prior_sample_weight=0.75).validate()


def test_contrastive_trunk_lr_scale_scales_only_the_contrastive_step_on_the_logit_path(tmp_path):
    """Known answer from three one-iteration runs (discriminator, adversarial and contrastive phases): scale 0
    leaves the trunk and the pooled feature where the discriminator phase put them, so scale s moves them by s
    times the scale-1 run's contrastive step; everything else, Adam's moments included, is as at scale 1."""
    from dcvae_tools.networks import build_network
    from training.objective import logit_path_parameters

    def one_iteration(scale):
        run = tmp_path / f"scale-{scale}"
        training_loop(tiny(total_iterations=1, contrastive_trunk_lr_scale=scale), run, progress=False)
        return load_checkpoint(run / CHECKPOINT_NAME)

    full, none, quarter = (one_iteration(scale) for scale in (1.0, 0.0, 0.25))
    discriminator = build_network(tiny().model_config(), "discriminator", spectral_norm=True)
    on_path = {id(p) for p in logit_path_parameters(discriminator)}
    names = {name for name, _ in discriminator.named_parameters()}
    path = {name for name, p in discriminator.named_parameters() if id(p) in on_path}
    assert path and all(name.split(".")[0] in ("trunk", "final") for name in path)
    assert any(n.startswith("b1_") for n in names - path) and any(n.startswith("head.") for n in names - path)
    moved = 0
    for name in names:
        a, zero, s = full["D"][name], none["D"][name], quarter["D"][name]
        if name in path:
            torch.testing.assert_close(s, zero + 0.25 * (a - zero), rtol=1e-5, atol=1e-7)
            moved += not torch.equal(a, zero)
        else:
            assert torch.equal(a, zero) and torch.equal(a, s), name
    assert moved == len(path)  # the contrastive phase does step every one of them at scale 1
    for net in ("E", "G", "G_ema", "D_M"):
        assert all(torch.equal(full[net][k], quarter[net][k]) for k in full[net]), net
    for slot, state in full["opt_D"]["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(state[key], quarter["opt_D"]["state"][slot][key]), (slot, key)


@pytest.mark.parametrize("backbone", ["autogan32", "dcgan32", "progan"])
def test_logit_path_is_what_the_logits_and_the_contrastive_features_both_reach(backbone):
    """Defined by gradients, not names: the parameters that get a gradient from the real/fake logits and also from
    the contrastive features (so not the head, which only the logits reach, nor block 1's contrastive head)."""
    from dcvae_tools.networks import autogan32, dcgan32, progan
    from training.objective import logit_path_parameters

    torch.manual_seed(0)
    D = {
        "autogan32": lambda: autogan32.Discriminator(channels=1, df_dim=16),
        "dcgan32": lambda: dcgan32.Discriminator(channels=1, ndf=8),
        "progan": lambda: progan.Discriminator(channels=1, image_size=32, fmap_base=32, fmap_max=16),
    }[backbone]()
    x = torch.randn(4, 1, 32, 32)

    def reached(use_logits: bool) -> set[str]:
        D.zero_grad(set_to_none=True)
        logits, features = D(x, features=() if use_logits else ("b1", "final"), logits=use_logits)
        (logits.square().sum() if use_logits else sum(f.square().sum() for f in features.values())).backward()
        return {n for n, p in D.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}

    by_logits, by_features = reached(True), reached(False)
    expected = by_logits & by_features
    assert expected and expected != by_logits and expected != by_features
    on_path = {id(p) for p in logit_path_parameters(D)}
    path = {n for n, p in D.named_parameters() if id(p) in on_path}
    # ProGAN's from_rgb layers of the resolutions it has grown past are in its trunk and reached by nothing
    assert path & (by_logits | by_features) == expected
    assert all(n.startswith("trunk.from_rgb.") for n in path - expected)


def test_scaled_step_is_adams_step_at_that_multiple_of_the_learning_rate():
    from training.objective import scaled_step

    torch.manual_seed(0)
    reference = torch.nn.Linear(6, 3)
    scaled = copy.deepcopy(reference)
    opt_reference = torch.optim.Adam(reference.parameters(), lr=0.3 * 2e-2, betas=(0.0, 0.9), fused=True)
    opt_scaled = torch.optim.Adam(scaled.parameters(), lr=2e-2, betas=(0.0, 0.9), fused=True)
    initial = [p.detach().clone() for p in reference.parameters()]
    for _ in range(3):
        x = torch.randn(5, 6)
        for net, opt in ((reference, opt_reference), (scaled, opt_scaled)):
            opt.zero_grad()
            net(x).square().sum().backward()
            with scaled_step(list(net.parameters()) if net is scaled else [], 0.3):
                opt.step()
        for a, b in zip(reference.parameters(), scaled.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-7)
        for a, b in zip(reference.parameters(), scaled.parameters(), strict=True):
            for key in ("exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(opt_scaled.state[b][key], opt_reference.state[a][key], rtol=1e-5, atol=0)
    assert all(not torch.equal(p, p0) for p, p0 in zip(scaled.parameters(), initial, strict=True))


def test_contrastive_trunk_lr_scale_needs_a_finite_non_negative_number_and_a_contrastive_phase():
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(OptionsError, match=r"contrastive_trunk_lr_scale=.*must be a finite number >= 0"):
            tiny(contrastive_trunk_lr_scale=bad).validate()
    for bad in (True, "0.1"):  # what a hand-edited training_options.json could hold
        with pytest.raises(OptionsError, match=r"contrastive_trunk_lr_scale=.*must be a finite number >= 0"):
            TrainingOptions.from_dict({**tiny().to_dict(), "contrastive_trunk_lr_scale": bad})
    for objective in ("vaegan", "dcvae-no-instance", "gan"):
        with pytest.raises(OptionsError, match=f"objective='{objective}' has no contrastive phase"):
            tiny(objective=objective, contrastive_trunk_lr_scale=0.1).validate()
    tiny(objective="dcvae-no-set", contrastive_trunk_lr_scale=0.1).validate()
    tiny(objective="vaegan").validate()  # the default is every objective's


def test_kl_ramp_is_geometric_between_its_iterations_and_constant_outside():
    o = tiny(kl_weight=1e-6, kl_ramp_to=1e-4, kl_ramp_start=100, kl_ramp_end=300)
    assert [o.kl_weight_at(i) for i in (0, 100)] == [1e-6, 1e-6]
    assert o.kl_weight_at(200) == pytest.approx(1e-5, rel=1e-9)  # halfway in log space
    assert o.kl_weight_at(150) == pytest.approx(1e-6 * 10**0.5, rel=1e-9)
    assert [o.kl_weight_at(i) for i in (300, 10_000)] == [1e-4, 1e-4]
    down = tiny(kl_weight=1e-4, kl_ramp_to=1e-6, kl_ramp_start=0, kl_ramp_end=10)
    assert down.kl_weight_at(5) == pytest.approx(1e-5, rel=1e-9)  # a ramp may go down as well
    assert tiny(kl_weight=3e-6).kl_weight_at(10**6) == 3e-6  # no ramp: the constant weight


@pytest.mark.parametrize("phase", ["Gmain", "Gcon"])
def test_kl_ramp_weighs_each_phases_kl_at_the_iteration_the_loop_set(phase):
    """Known answer: the logged KL term is the ramp's weight at ``objective.iteration`` times the summed KL of
    the posterior the encoder produced in that phase (captured by a hook)."""
    from training.loss import kl_divergence

    options = tiny(kl_weight=1e-3, kl_ramp_to=1e-1, kl_ramp_start=10, kl_ramp_end=20)
    torch.manual_seed(0)
    E, _, _, objective = _objective_and_networks(options)
    posteriors: list[tuple[torch.Tensor, torch.Tensor]] = []
    E.register_forward_hook(lambda module, args, out: posteriors.append(tuple(t.detach() for t in out)))
    real = torch.rand(8, 1, 32, 32) * 2 - 1
    for iteration, weight in ((0, 1e-3), (15, 1e-2), (25, 1e-1)):
        posteriors.clear()
        objective.iteration = iteration
        stats = objective.accumulate_gradients(phase, real, torch.arange(8))
        ((mu, logvar),) = posteriors
        assert stats["Schedule/kl_weight"] == pytest.approx(weight, rel=1e-9)
        assert stats["Loss/G/kl"] == pytest.approx(weight * kl_divergence(mu, logvar).item(), rel=1e-5)


def test_training_loop_hands_its_iteration_to_the_kl_ramp(tmp_path):
    options = tiny(total_iterations=8, kl_weight=1e-6, kl_ramp_to=1e-2, kl_ramp_start=2, kl_ramp_end=6)
    training_loop(options, tmp_path / "run", progress=False)
    lines = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    scheduled = {line["iteration"] - 1: line["Schedule/kl_weight"] for line in lines if "Schedule/kl_weight" in line}
    assert sorted(scheduled) == [0, 2, 4, 6]  # the encoder/decoder iterations (n_critic 2), logged after each
    for iteration, weight in scheduled.items():
        assert weight == pytest.approx(options.kl_weight_at(iteration), rel=1e-9)
    training_loop(tiny(total_iterations=2), tmp_path / "constant", progress=False)
    constant = (tmp_path / "constant" / "stats.jsonl").read_text()
    assert "Loss/G/kl" in constant and "Schedule/kl_weight" not in constant  # no ramp, no schedule logged


def test_kl_ramp_note_says_what_part_of_the_ramp_a_run_does_not_train():
    from training.run_state import kl_ramp_note

    ramp = {"kl_weight": 1e-6, "kl_ramp_to": 1e-4, "kl_ramp_start": 100, "kl_ramp_end": 300}
    assert kl_ramp_note(tiny(total_iterations=400, **ramp), 0) is None  # trains all of it
    assert kl_ramp_note(tiny(total_iterations=400, **ramp), 100) is None  # starts where it starts
    assert kl_ramp_note(tiny(total_iterations=400), 200) is None  # no ramp
    late = kl_ramp_note(tiny(total_iterations=400, **ramp), 200)
    assert "began before iteration 200" in late and "first weight is 1e-05" in late
    short = kl_ramp_note(tiny(total_iterations=201, **ramp), 0)  # its last iteration, 200, is the ramp's middle
    assert "ends after total_iterations 201" in short and "last iteration trains at weight 1e-05" in short


def test_continuing_another_state_inside_a_kl_ramp_says_so_and_resuming_its_own_does_not(tmp_path, capsys):
    training_loop(tiny(total_iterations=2), tmp_path / "source", progress=False)
    ramp = tiny(total_iterations=4, kl_ramp_to=1e-2, kl_ramp_start=0, kl_ramp_end=4)
    training_loop(ramp, tmp_path / "branch", progress=False, resume_from=tmp_path / "source", stop_after=3)
    assert "KL ramp (1e-06 at iteration 0, 0.01 at 4) began before iteration 2" in capsys.readouterr().err
    training_loop(ramp, tmp_path / "branch", progress=False)  # its own checkpoint: nothing new to say
    assert "KL ramp" not in capsys.readouterr().err


def test_resume_refuses_a_kl_ramp_that_an_older_checkpoint_did_not_train_with(tmp_path):
    from training.run_state import check_resume_options

    saved = tiny().to_dict()
    for key in ("kl_ramp_to", "kl_ramp_start", "kl_ramp_end"):
        del saved[key]  # a checkpoint written before the options existed
    check_resume_options(json.dumps(saved), tiny(), tmp_path)
    ramp = tiny(kl_ramp_to=1e-4, kl_ramp_start=0, kl_ramp_end=10)
    with pytest.raises(OptionsError, match=r"kl_ramp_to: None \(unrecorded: its default\), 0\.0001 now"):
        check_resume_options(json.dumps(saved), ramp, tmp_path)


def test_kl_ramp_needs_a_positive_target_an_ordered_span_and_an_encoder():
    with pytest.raises(OptionsError, match=r"kl_ramp_end=100: is only read with kl_ramp_to"):
        tiny(kl_ramp_end=100).validate()
    with pytest.raises(OptionsError, match=r"kl_ramp_start=False: is only read with kl_ramp_to"):
        TrainingOptions.from_dict({**tiny().to_dict(), "kl_ramp_start": False})
    for bad in (True, "1e-6", float("inf"), float("nan"), -1e-6):
        with pytest.raises(OptionsError, match=r"kl_weight=.*must be a finite number >= 0"):
            TrainingOptions.from_dict({**tiny().to_dict(), "kl_weight": bad})
    with pytest.raises(OptionsError, match=r"kl_ramp_end=100: must be an iteration after kl_ramp_start=100"):
        tiny(kl_ramp_to=1e-4, kl_ramp_start=100, kl_ramp_end=100).validate()
    with pytest.raises(OptionsError, match=r"kl_ramp_start=-1"):
        tiny(kl_ramp_to=1e-4, kl_ramp_start=-1, kl_ramp_end=100).validate()
    with pytest.raises(OptionsError, match=r"kl_weight=0.0: must be > 0 for a geometric ramp"):
        tiny(kl_weight=0.0, kl_ramp_to=1e-4, kl_ramp_end=100).validate()
    with pytest.raises(OptionsError, match=r"objective='gan' trains no encoder"):
        tiny(objective="gan", kl_ramp_to=1e-4, kl_ramp_end=100).validate()
    for bad in (0, -1e-4, True, "1e-4", float("inf")):  # what a hand-edited training_options.json could hold
        with pytest.raises(OptionsError, match=r"kl_ramp_to=.*must be a positive finite number"):
            TrainingOptions.from_dict({**tiny().to_dict(), "kl_ramp_to": bad, "kl_ramp_end": 100})
    with pytest.raises(OptionsError, match=r"kl_ramp_end=.*must be an iteration after"):
        TrainingOptions.from_dict({**tiny().to_dict(), "kl_ramp_to": 1e-4, "kl_ramp_end": 1.5})
    tiny(kl_ramp_to=1e-4, kl_ramp_start=0, kl_ramp_end=1).validate()


def test_joint_decoder_batch_needs_both_kinds_of_latent():
    with pytest.raises(OptionsError, match="decoder_batch"):
        tiny(objective="vae", decoder_batch="joint").validate()
    with pytest.raises(OptionsError, match="decoder_batch='both'"):
        tiny(decoder_batch="both").validate()
    tiny(objective="vaegan", decoder_batch="joint").validate()


def test_fp16_with_an_enabled_grad_scaler_trains(tmp_path):
    """fp16 enables the GradScaler (on the CPU too): every optimizer is stepped once per scaler update."""
    logged = []
    training_loop(
        tiny(total_iterations=4, amp="fp16"), tmp_path / "run", progress=False,
        progress_fn=lambda i, s: logged.append(s),
    )
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert state["scaler"] and float(state["scaler"]["scale"]) > 0  # an enabled scaler has state
    assert all(math.isfinite(v) for s in logged for v in s.values())
    assert int(state["opt_G"]["state"][0]["step"]) >= 1  # inf checks did not skip every step


def test_tiny_model_measurably_improves(tmp_path):
    """Known answer: 60 iterations of the VAE objective bring reconstructions of real images closer."""
    from training.data import make_dataset

    o = tiny(total_iterations=60, objective="vae", kl_weight=1.0, n_critic=1, lr=1e-3)
    before = training_loop(o.override(total_iterations=1), tmp_path / "a", progress=False, return_networks=True)
    after = training_loop(o, tmp_path / "b", progress=False, return_networks=True)
    data = make_dataset("fashion-mnist", "test", 32, 1, None)
    x = torch.stack([data[i][0] for i in range(64)])

    def error(nets):
        with torch.no_grad():
            nets["E"].eval()
            return float(((nets["G_ema"](nets["E"](x)[0]) - x) ** 2).mean())

    assert error(after["networks"]) < 0.8 * error(before["networks"])


@pytest.mark.parametrize("objective", ["vae", "vaegan", "gan", "dcvae-no-instance", "dcvae-no-set"])
def test_baselines_and_ablations_run(tmp_path, objective):
    extra = {"recon_space": "feature"} if objective == "vaegan" else {}
    logged = []
    options = tiny(total_iterations=3, objective=objective, n_critic=1, **extra)
    training_loop(options, tmp_path / "r", progress=False, progress_fn=lambda i, s: logged.append(s))
    keys = set().union(*logged)
    assert ("Loss/D/hinge" in keys) == (objective in ("vaegan", "gan", "dcvae-no-instance"))
    assert ("Loss/contrastive/final" in keys) == (objective == "dcvae-no-set")
    assert ("Loss/G/recon" in keys) == (objective in ("vae", "vaegan"))
    assert all(math.isfinite(v) for s in logged for v in s.values())
    state = load_checkpoint(tmp_path / "r" / CHECKPOINT_NAME)
    decoder_steps = {int(s["step"]) for s in state["opt_G"]["state"].values()}
    assert decoder_steps == {options.budget()["encoder_decoder_updates"]}  # the budget counts real updates


def test_baseline_presets_have_dcvae_budget():
    """Same budget = equal encoder/decoder updates and equal real images seen (docs/experiments.md)."""
    for model in ("fashion-mnist-32", "mnist-32"):
        reference = get_preset(model).budget()
        baselines = [name for name in all_presets() if name.startswith(f"{model}-")]
        assert baselines
        for name in baselines:
            assert get_preset(name).budget() == reference, name


@pytest.mark.parametrize(
    "changes",
    [{}, {"kl_ramp_to": 1e-2, "kl_ramp_start": 1, "kl_ramp_end": 5}, {"contrastive_trunk_lr_scale": 0.5},
     {"translate": 2}],
    ids=["preset", "kl-ramp", "contrastive-trunk-lr-scale", "translate"],
)
def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path, changes):
    options = tiny(total_iterations=6, **changes)  # a KL ramp resumes at its place: it runs on absolute iterations
    training_loop(options, tmp_path / "straight", progress=False)
    training_loop(options, tmp_path / "split", progress=False, stop_after=3)
    assert load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["iteration"] == 3
    training_loop(options, tmp_path / "split", progress=False)  # resumes from iteration 3
    a = _params(load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME))
    b = _params(load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed run differs in {different[:5]}"


def test_translate_changes_what_training_sees(tmp_path):
    """The shifted images reach the networks: the same run with and without translate ends elsewhere."""
    training_loop(tiny(total_iterations=2), tmp_path / "plain", progress=False)
    training_loop(tiny(total_iterations=2, translate=2), tmp_path / "shifted", progress=False)
    a = _params(load_checkpoint(tmp_path / "plain" / CHECKPOINT_NAME))
    b = _params(load_checkpoint(tmp_path / "shifted" / CHECKPOINT_NAME))
    assert any(not torch.equal(a[k], b[k]) for k in a if k.startswith("E."))


def test_resume_refuses_changed_training_options_and_allows_a_longer_run(tmp_path):
    training_loop(tiny(total_iterations=2), tmp_path / "run", progress=False)
    written = (tmp_path / "run" / "training_options.json").read_text()
    with pytest.raises(OptionsError, match=r"lr: 0\.0002 in the checkpoint, 0\.001 now"):
        training_loop(tiny(total_iterations=4, lr=1e-3), tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "training_options.json").read_text() == written  # nothing overwritten
    assert training_loop(tiny(total_iterations=4), tmp_path / "run", progress=False)["iteration"] == 4


def test_resume_refuses_another_number_of_processes(tmp_path):
    """Each process has its own batch, random state and share of the data: a run trained by two processes does
    not go on as it trained in one (the extra rank's state would be dropped without a word)."""
    from training.run_state import write_checkpoint

    training_loop(tiny(total_iterations=2), tmp_path / "run", progress=False)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    state["rng"] = [state["rng"][0], state["rng"][0]]  # as two gloo processes leave it
    write_checkpoint(state, tmp_path / "run" / CHECKPOINT_NAME)
    with pytest.raises(OptionsError, match=r"with 1 process\(es\): it was trained by 2.*--nproc-per-node 2"):
        training_loop(tiny(total_iterations=4), tmp_path / "run", progress=False)
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)["iteration"] == 2


@pytest.mark.parametrize("saved_layout", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
def test_restored_adam_moments_take_their_parameters_layout_so_the_next_steps_are_exact(tmp_path, saved_layout):
    """A resume or --resume-from may change channels_last. torch's fused CPU Adam pairs a parameter and its moments
    by memory position, so moments left in the saved layout gave each element another's (steps off by up to 12x)."""
    from training.run_state import restore_trainer_state

    live_layout = torch.channels_last if saved_layout == torch.contiguous_format else torch.contiguous_format
    torch.manual_seed(0)
    source = torch.nn.Conv2d(8, 16, 3).to(memory_format=saved_layout)
    source_opt = torch.optim.Adam(source.parameters(), betas=(0.0, 0.9), fused=True)
    grads = [[torch.randn_like(p) * torch.rand(()) * 10 for p in source.parameters()] for _ in range(6)]

    def step(net: torch.nn.Module, opt: torch.optim.Optimizer, gs: list[torch.Tensor]) -> None:
        for p, g in zip(net.parameters(), gs, strict=True):
            p.grad = torch.empty_like(p).copy_(g)  # in the parameter's layout, as autograd gives it
        opt.step()

    for gs in grads[:3]:
        step(source, source_opt, gs)
    torch.save({"E": source.state_dict(), "opt_E": source_opt.state_dict()}, tmp_path / "state.pt")
    live = torch.nn.Conv2d(8, 16, 3).to(memory_format=live_layout)
    live_opt = torch.optim.Adam(live.parameters(), betas=(0.0, 0.9), fused=True)
    restore_trainer_state(load_checkpoint(tmp_path / "state.pt"), networks={"E": live}, optimizers={"opt_E": live_opt},
                          scaler=torch.amp.GradScaler("cpu", enabled=False), queues={}, loader=None, rank=0,
                          device=torch.device("cpu"), required=("E",))
    assert live.weight.is_contiguous(memory_format=live_layout)
    for gs in grads[3:]:
        step(source, source_opt, gs)
        step(live, live_opt, gs)
        for a, b in zip(source.parameters(), live.parameters(), strict=True):
            torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_resume_treats_an_option_newer_than_the_checkpoint_as_its_default(tmp_path):
    from training.run_state import check_resume_options

    saved = tiny().to_dict()
    del saved["prior_sample_weight"]  # a checkpoint written before the option existed
    check_resume_options(json.dumps(saved), tiny(), tmp_path)  # trained as the default does: resumes
    with pytest.raises(OptionsError, match=r"prior_sample_weight: 0\.5 \(unrecorded: its default\), 0\.75 now"):
        check_resume_options(json.dumps(saved), tiny(prior_sample_weight=0.75), tmp_path)


def test_resuming_a_run_past_its_total_says_why_nothing_trains(tmp_path, capsys):
    training_loop(tiny(total_iterations=4), tmp_path / "run", progress=False)  # a run continued to 4
    capsys.readouterr()
    before = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    summary = training_loop(tiny(total_iterations=2), tmp_path / "run", progress=False)  # the preset's 2
    assert summary["iteration"] == 4
    err = capsys.readouterr().err
    assert "at iteration 4, not below total_iterations 2 (the run was last set to 4)" in err
    assert "--set total_iterations=N with N above 4" in err
    after = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    assert all(torch.equal(a, b) for a, b in zip(_params(before).values(), _params(after).values(), strict=True))
    training_loop(tiny(total_iterations=5), tmp_path / "run", progress=False)
    assert "nothing to train" not in capsys.readouterr().err  # a run with work left says nothing of the kind


def test_checkpoint_loads_with_weights_only(tmp_path):
    training_loop(tiny(total_iterations=2), tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / CHECKPOINT_NAME, weights_only=True)  # raises if anything needs pickle
    assert state["iteration"] == 2 and state.keys() == load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME).keys()


def test_export_then_load_model_reproduces_encoder_and_ema_decoder(tmp_path):
    from dcvae_tools.networks import build_network

    training_loop(tiny(total_iterations=4), tmp_path / "run", progress=False)
    state = load_checkpoint(tmp_path / "run" / CHECKPOINT_NAME)
    config = model_from_run(tmp_path / "run").config
    assert config.description.endswith("4 iterations of 8 images")  # the card states the real budget
    encoder = build_network(config, "encoder", spectral_norm=True)
    encoder.load_state_dict(state["E"])
    encoder.eval()
    decoder = build_network(config, "decoder")
    decoder.load_state_dict(state["G_ema"])
    decoder.eval()
    export_run(tmp_path / "run", tmp_path / "release", metrics={"test_metric": 1.5})
    model = load_model(tmp_path / "release")
    x = torch.full((5, 1, 32, 32), -1.0)  # the model's input format: 28x28 content padded with -1
    x[:, :, 2:30, 2:30] = torch.rand(5, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        mu, _ = encoder(x)
        images = decoder(mu)
    assert torch.allclose(model.encode(x), mu, atol=1e-6)
    assert torch.allclose(model.decode(mu), images, atol=1e-6)
    assert model.config.preset == "tiny" and model.config.metrics == {"test_metric": 1.5}
    entry = manifest_entry(tmp_path / "release", repo_id="org/tiny")
    assert set(entry["files"]) == {"config.json", "model.safetensors", "README.md"}


def test_release_of_a_network_snapshot(tmp_path):
    """`release --snapshot N` ships the run's network snapshot at N (the one its curves favour), not the last
    checkpoint; at the checkpoint's own iteration the two are the same model."""
    from typer.testing import CliRunner

    from training.cli import UserError, app

    run = tmp_path / "run"
    training_loop(tiny(total_iterations=4, network_snapshot_every=2), run, progress=False)
    manifest = tmp_path / "manifest.json"
    # a file derived from a snapshot after training (latent-stats run on it) is neither read nor released
    (run / "network-snapshots" / "iteration-0000002" / "latent_stats.safetensors").write_bytes(b"stale")

    def release(iteration, *extra):
        return CliRunner().invoke(app, ["release", str(run), "--snapshot", str(iteration), "--name", "snap",
                                        "--repo-id", "org/snap", "--no-bundle", "-o", str(tmp_path / f"rel{iteration}"),
                                        "--manifest", str(manifest), *extra])

    def weights(folder):
        from safetensors.torch import load_file

        return load_file(folder / "model.safetensors")

    result = release(2)
    assert result.exit_code == 0, result.output
    released, snapshot = weights(tmp_path / "rel2"), weights(run / "network-snapshots" / "iteration-0000002")
    assert released.keys() == snapshot.keys() and all(torch.equal(released[k], snapshot[k]) for k in released)
    assert json.loads(manifest.read_text())["models"]["snap"]["training_iterations"] == 2
    assert load_model(tmp_path / "rel2").config.description.endswith("2 iterations of 8 images")

    assert release(4).exit_code == 0
    export_run(run, tmp_path / "checkpoint-export")
    assert not (tmp_path / "rel2" / "latent_stats.safetensors").exists()
    last, checkpoint = weights(tmp_path / "rel4"), weights(tmp_path / "checkpoint-export")
    assert all(torch.equal(last[k], checkpoint[k]) for k in last)
    assert not all(torch.equal(last[k], released[k]) for k in last)

    missing = release(3)
    assert isinstance(missing.exception, UserError)
    assert "--snapshot 3" in str(missing.exception) and "it has: 2, 4" in str(missing.exception)
    assert not (tmp_path / "rel3").exists()
    with_state = release(2, "--push", "org/snap", "--training-state")
    assert isinstance(with_state.exception, UserError) and "training state" in str(with_state.exception)
    report = tmp_path / "report-of-4.json"  # what `dcvae-train eval` writes for the iteration-4 release
    report.write_text(json.dumps({"metrics": {"recon_mse_test": 0.5}, "details": {"model_config": {
        "description": load_model(tmp_path / "rel4").config.description}}}))
    mismatched = release(2, "--report", str(report))
    assert isinstance(mismatched.exception, UserError)
    assert "iteration 4 " in str(mismatched.exception) and "at 2:" in str(mismatched.exception)
    assert release(4, "--report", str(report)).exit_code == 0
    assert load_model(tmp_path / "rel4").config.metrics == {"recon_mse_test": 0.5}
    # `export --metrics` checks the report's iteration as release does: the run's checkpoint is at 4
    stale = tmp_path / "report-of-2.json"
    stale.write_text(json.dumps({"metrics": {"recon_mse_test": 0.7}, "details": {"iteration": 2}}))
    exported = CliRunner().invoke(app, ["export", str(run), "-o", str(tmp_path / "exp"), "--metrics", str(stale)])
    assert isinstance(exported.exception, UserError), exported.output
    assert "iteration 2 " in str(exported.exception) and "at 4:" in str(exported.exception)
    assert not (tmp_path / "exp").exists()


def test_an_export_writes_the_checkpoint_it_read_even_after_the_run_wrote_a_newer_one(tmp_path):
    """`release` reads the checkpoint once and passes it on: its iteration, attributes and weights agree even when
    the run, still training, replaces the file meanwhile."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    training_loop(tiny(total_iterations=2), run, progress=False)
    state = load_checkpoint(run / CHECKPOINT_NAME)
    training_loop(tiny(total_iterations=4), run, progress=False)  # the run moves on after the read
    folder = export_run(run, tmp_path / "exported", checkpoint=state)
    assert load_model(folder).config.description.endswith("2 iterations of 8 images")
    decoder = {k[len("decoder."):]: v for k, v in load_file(folder / "model.safetensors").items()
               if k.startswith("decoder.")}
    shared = sorted(decoder.keys() & state["G_ema"].keys())
    assert len(shared) > 4
    assert all(torch.equal(decoder[k], state["G_ema"][k]) for k in shared)
    newer = load_checkpoint(run / CHECKPOINT_NAME)["G_ema"]
    assert not all(torch.equal(decoder[k], newer[k]) for k in shared)


def test_options_are_validated():
    with pytest.raises(OptionsError, match="objective"):
        tiny(objective="nope")
    with pytest.raises(OptionsError, match="unknown training option"):
        tiny(learning_rate=1)
    with pytest.raises(OptionsError, match="gf_dim"):
        tiny(architecture_args={"gf_dim": 0, "df_dim": 8})
    assert "cifar10-autogan32" in all_presets()
    official = get_preset("cifar10-autogan32")
    assert (official.lr, official.betas, official.n_critic, official.kl_weight) == (2e-4, (0.0, 0.9), 5, 1e-6)
    assert (official.queue_size, official.temperature, official.momentum, official.ema) == (
        8192,
        0.07,
        0.999,
        0.999,
    )


RANK_SCRIPT_HEAD = (  # what every torchrun-style rank script below starts with
    "import os, sys, torch\n"
    "from training.distributed import cleanup, init_distributed\n"
    "from training.presets import get_preset\n"
    "from training.training_loop import training_loop\n"
    "info = init_distributed('cpu')\n"
)


def test_ddp_gloo_two_processes_ranks_agree_and_resume_continues_exactly(tmp_path):
    """torchrun-style launches of 2 CPU processes (gloo).

    After training every rank's networks are equal; each phase updates only the discriminator parts it
    uses (DDP finds the unused ones); the checkpoint keeps each rank's own random state; and a run stopped
    at iteration 2 and resumed ends bit-exactly where an uninterrupted 4-iteration run ends.
    """
    script = tmp_path / "rank_main.py"
    script.write_text(
        RANK_SCRIPT_HEAD +
        "o = get_preset('tiny').override(total_iterations=4, log_every=1, snapshot_every=100, checkpoint_every=100)\n"
        "stop = int(sys.argv[2])\n"
        "summary = training_loop(o, sys.argv[1], dist_info=info, progress=False, return_networks=True,\n"
        "                        stop_after=stop)\n"
        "nets = {k: v.state_dict() for k, v in summary['networks'].items() if v is not None}\n"
        "nets['noise'] = torch.randn(4)\n"
        "torch.save(nets, os.path.join(sys.argv[1], f'rank{info.rank}-{stop}.pt'))\n"
        "cleanup(info)\n"
    )
    straight, split = tmp_path / "straight", tmp_path / "split"
    straight.mkdir()
    split.mkdir()
    launch_two_ranks(script, str(straight), "4")
    launch_two_ranks(script, str(split), "2")
    half = load_checkpoint(split / CHECKPOINT_NAME)
    assert half["iteration"] == 2 and len(half["rng"]) == 2
    assert not torch.equal(half["rng"][0]["cpu"], half["rng"][1]["cpu"])  # each rank's own state was kept
    launch_two_ranks(script, str(split), "4")

    rank0 = torch.load(straight / "rank0-4.pt", weights_only=True)
    rank1 = torch.load(straight / "rank1-4.pt", weights_only=True)
    assert not torch.equal(rank0["noise"], rank1["noise"])  # ranks draw different noise
    for net in ("E", "G", "D", "G_ema"):
        for key, value in rank0[net].items():
            if "running_" in key or "num_batches" in key:
                continue  # BatchNorm statistics are per-rank (as in DDP without SyncBatchNorm)
            assert torch.allclose(value, rank1[net][key], atol=1e-6), f"{net}.{key} differs between ranks"
    for rank in (0, 1):
        a = torch.load(straight / f"rank{rank}-4.pt", weights_only=True)
        b = torch.load(split / f"rank{rank}-4.pt", weights_only=True)
        assert torch.equal(a["noise"], b["noise"]), f"rank {rank} draws other noise after resume"
        for net in ("E", "G", "D", "G_ema", "D_M"):
            diff = [k for k in a[net] if not torch.equal(a[net][k], b[net][k])]
            assert not diff, f"rank {rank}: resumed {net} differs in {diff[:4]}"

    state = load_checkpoint(straight / CHECKPOINT_NAME)
    assert state["iteration"] == 4 and int(state["queues"]["final"]["pointer"]) == (2 * 2 * 8) % 64
    from dcvae_tools.networks import build_network

    D = build_network(get_preset("tiny").model_config(), "discriminator", spectral_norm=True)
    steps = _steps_by_module(state["opt_D"], D)
    assert steps == {"trunk": {6}, "final": {6}, "head": {4}, "b1_conv": {2}, "b1_linear": {2}}


def test_cli_train_export_and_eval_a_run(tmp_path):
    """The dcvae-train commands chain: train a few iterations, export, evaluate the run into a JSON report."""
    from typer.testing import CliRunner

    from training.cli import app

    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--preset", "tiny", "--run-dir", str(run), "--stop-after", "2",
                                 "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "release")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "release" / "model.safetensors").is_file()
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["eval", str(run), "--metrics", "recon_mse_test,recon_psnr_test",
                                 "--test-limit", "64", "-o", str(report)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(report.read_text())["metrics"]
    assert 0 < metrics["recon_mse_test"] < 1 and metrics["recon_psnr_test"] > 0
    log = run / "metric-recon_mse_test.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["value"] == metrics["recon_mse_test"]

    # --no-log leaves the run folder exactly as it was; --log-dir writes the logs there instead
    def contents() -> dict:
        return {path: path.read_bytes() if path.is_file() else None for path in run.rglob("*")}

    before = contents()
    result = runner.invoke(app, ["eval", str(run), "--metrics", "recon_mse_test", "--test-limit", "64", "--no-log"])
    assert result.exit_code == 0, result.output
    assert contents() == before
    logs = tmp_path / "logs"
    result = runner.invoke(app, ["eval", str(run), "--metrics", "recon_mse_test", "--test-limit", "64",
                                 "--log-dir", str(logs)])
    assert result.exit_code == 0, result.output
    assert contents() == before and [p.name for p in logs.iterdir()] == ["metric-recon_mse_test.jsonl"]
    result = runner.invoke(app, ["eval", str(run), "--log-dir", str(logs), "--no-log"])
    assert result.exit_code != 0 and "contradict" in str(result.exception)


def test_progress_bar_and_loss_lines_go_to_stderr(tmp_path, capsys):
    training_loop(tiny(total_iterations=4, log_every=2), tmp_path / "run", progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout is the train command's JSON summary
    assert "tiny" in captured.err and "4/4" in captured.err and "G/hinge" in captured.err


def test_torchrun_launches_the_train_command_cannot_run_are_refused_before_joining(tmp_path, monkeypatch):
    """Refusals come before the process group is joined: a rank that joined and then refused would leave the
    others waiting in it (here, with no rank 1 ever started, joining would wait for it until the timeout)."""
    from typer.testing import CliRunner

    from training.cli import app
    from training.distributed import launched_with_several_ranks

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")  # nothing listens there
    assert launched_with_several_ranks()
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--preset", "tiny", "--device", "cpu", "--outdir", str(tmp_path)])
    assert "with torchrun, pass --run-dir" in str(result.exception), result.output
    result = runner.invoke(app, ["train", "--preset", "faces-progan32", "--device", "cpu", "--run-dir",
                                 str(tmp_path / "run")])
    assert "progressive presets run in one process" in str(result.exception), result.output
    assert not torch.distributed.is_initialized() and not any(tmp_path.iterdir())


def test_progressive_runs_refuse_the_single_resolution_continuations(tmp_path):
    """--resume-from and --training-state would be ignored by a progressive run: refused by name, nothing written."""
    from typer.testing import CliRunner

    from training.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["train", "--preset", "faces-progan32", "--device", "cpu", "--run-dir",
                                 str(tmp_path / "run"), "--resume-from", "fashion-mnist-32"])
    assert result.exit_code != 0 and "--resume-from is for single-resolution presets" in str(result.exception)
    assert not (tmp_path / "run").exists()
    run = tmp_path / "grown"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")  # never read: the refusal comes first
    (run / "progressive_schedule.json").write_text("{}")
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "out"), "--training-state"])
    assert result.exit_code != 0 and "--training-state is for single-resolution runs" in str(result.exception)
    assert not (tmp_path / "out").exists()


def test_trainer_help_keeps_option_names_and_example_lines_at_80_columns():
    from typer.testing import CliRunner

    from training.cli import app

    runner = CliRunner()
    shown = runner.invoke(app, ["export", "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert shown.exit_code == 0 and "--decoder-statistics" in shown.output and "--no-training-state" in shown.output
    assert "…" not in shown.output  # nothing cut short
    train = runner.invoke(app, ["train", "--help"], terminal_width=80, env={"COLUMNS": "80"}).output
    # each example stays on its own line, whole, so it can be copied
    assert "\n    dcvae-train train --preset tiny\n" in train and "--set KEY=VALUE" in train


def test_resuming_drops_log_lines_that_a_run_wrote_after_its_last_checkpoint(tmp_path, capsys):
    """A run that dies between checkpoints has logged iterations the resumed run trains again: the log keeps
    one line per iteration."""
    run = tmp_path / "run"
    training_loop(tiny(total_iterations=4, checkpoint_every=2), run, progress=False, stop_after=2)
    straight = (run / "stats.jsonl").read_text().splitlines()
    # as if it had gone on to log iterations 3 and 4 and then died before a checkpoint
    with (run / "stats.jsonl").open("a") as log:
        log.write(json.dumps({"iteration": 3, "Loss/D/hinge": 9.0}) + "\n")
        log.write(json.dumps({"iteration": 4, "Loss/D/hinge": 9.0}) + "\n")
    training_loop(tiny(total_iterations=4, checkpoint_every=2), run, progress=False)
    assert "dropped 2 line(s) past iteration 2" in capsys.readouterr().err
    logged = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [d["iteration"] for d in logged] == [1, 2, 3, 4]
    assert (run / "stats.jsonl").read_text().splitlines()[:2] == straight  # the lines before it are kept as written
    assert all(d.get("Loss/D/hinge") != 9.0 for d in logged)


def test_the_unwrapped_networks_come_out_of_ddp_under_torch_compile_too(tmp_path):
    """With compile under torchrun the decoder is torch.compile(DDP(G)); the prior-sample half and the frozen
    discriminator must bypass DDP there as well (through DDP twice in one step, its gradient hooks misfire)."""
    import torch.distributed as dist

    from training.objective import DCVAELoss

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        net = torch.nn.Linear(2, 2)
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        assert DCVAELoss._raw(ddp) is net
        assert DCVAELoss._raw(torch.compile(ddp)) is net
        compiled = torch.compile(net)  # no DDP inside: the compiled module stays as it is
        assert DCVAELoss._raw(compiled) is compiled and DCVAELoss._raw(net) is net
    finally:
        dist.destroy_process_group()


def test_cli_presets_names_each_release_base_and_where_its_steps_are():
    """The release is its preset continued with other options; the listing says where every step is."""
    from typer.testing import CliRunner

    from training.cli import app

    result = CliRunner().invoke(app, ["presets"])
    assert result.exit_code == 0, result.output
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert rows["preset"][-1] == "base of release"
    assert rows["fashion-mnist-32"][-1] == "fashion-mnist-32" and rows["tiny"][-1] == "-"
    assert "bash reports/reproduce.sh NAME" in " ".join(result.stderr.split())


def _encoder_only_refit(tmp_path, source_iterations=3, refit_iterations=3):
    source, refit = tmp_path / "source", tmp_path / "refit"
    training_loop(tiny(total_iterations=source_iterations), source, progress=False)
    # as a state saved before the option existed: the note below must still name it
    state = load_checkpoint(source / CHECKPOINT_NAME)
    options = json.loads(state["options"])
    del options["encoder_only"]
    torch.save({**state, "options": json.dumps(options)}, source / CHECKPOINT_NAME)
    logged = []
    training_loop(
        tiny(total_iterations=source_iterations + refit_iterations, encoder_only=True),
        refit,
        resume_from=source,
        progress=False,
        progress_fn=lambda i, s: logged.append(s),
    )
    return load_checkpoint(source / CHECKPOINT_NAME), load_checkpoint(refit / CHECKPOINT_NAME), logged


def test_encoder_only_fits_the_encoder_to_the_shipped_decoder_and_changes_nothing_else(tmp_path, capsys):
    """A refit from a 3-iteration run: the encoder moves; the decoder the release ships (the EMA copy, buffers
    included), the discriminator and its optimizer state are bit-identical to the source's, and the live decoder
    was replaced by the EMA copy; no discriminator phase is logged."""
    before, after, logged = _encoder_only_refit(tmp_path)
    assert "options changed from the source's: encoder_only True (was False)" in capsys.readouterr().err
    assert after["iteration"] == 6
    assert any(not torch.equal(before["E"][k], after["E"][k]) for k in before["E"])
    for net, source_net in (("G_ema", "G_ema"), ("G", "G_ema"), ("D", "D")):
        diff = [k for k in before[source_net] if not torch.equal(before[source_net][k], after[net][k])]
        assert not diff, f"{net} differs from the source's {source_net} in {diff[:4]}"
    assert any(not torch.equal(before["G"][k], after["G"][k]) for k in before["G"])  # the live one was not shipped
    # the contrastive keys' momentum copy follows the fixed discriminator, as in every contrastive phase
    params = [k for k in before["D"] if k in before["D_M"] and before["D"][k].is_floating_point()]
    gap = [sum(float((state["D_M"][k] - before["D"][k]).norm()) for k in params) for state in (before, after)]
    assert 0 < gap[1] < gap[0]
    assert before["opt_D"]["state"].keys() == after["opt_D"]["state"].keys()
    for index, moments in before["opt_D"]["state"].items():
        for name, value in moments.items():
            assert torch.equal(value, after["opt_D"]["state"][index][name]), f"opt_D state {index}.{name} moved"
    names = {k for s in logged for k in s}
    assert "Loss/D/hinge" not in names and {"Loss/G/hinge", "Loss/contrastive/b1", "Loss/G/kl"} <= names


def test_encoder_only_runs_under_ddp_on_two_processes(tmp_path):
    """Two gloo ranks: the encoder is all-reduced (equal on both ranks), the fixed decoder and discriminator are
    not wrapped by DDP (which refuses a module with nothing to train) and stay the source's."""
    source = tmp_path / "source"
    training_loop(tiny(total_iterations=2), source, progress=False)
    script = tmp_path / "rank_main.py"
    script.write_text(
        RANK_SCRIPT_HEAD +
        "o = get_preset('tiny').override(total_iterations=4, log_every=1, snapshot_every=100, checkpoint_every=100,\n"
        "                                encoder_only=True)\n"
        "summary = training_loop(o, sys.argv[1], dist_info=info, progress=False, return_networks=True,\n"
        "                        resume_from=sys.argv[2])\n"
        "torch.save({k: v.state_dict() for k, v in summary['networks'].items() if v is not None},\n"
        "           os.path.join(sys.argv[1], f'rank{info.rank}.pt'))\n"
        "cleanup(info)\n"
    )
    run = tmp_path / "refit"
    run.mkdir()
    launch_two_ranks(script, str(run), str(source))
    before = load_checkpoint(source / CHECKPOINT_NAME)
    ranks = [torch.load(run / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert any(not torch.equal(before["E"][k], ranks[0]["E"][k]) for k in before["E"])
    for key, value in ranks[0]["E"].items():
        assert torch.allclose(value, ranks[1]["E"][key], atol=1e-6), f"E.{key} differs between ranks"
    for rank in ranks:
        for net, source_net in (("G_ema", "G_ema"), ("G", "G_ema"), ("D", "D")):
            assert all(torch.equal(before[source_net][k], rank[net][k]) for k in before[source_net]), net


def test_encoder_only_needs_an_encoder_and_a_boolean():
    with pytest.raises(OptionsError, match=r"encoder_only=True: objective='gan' trains no encoder"):
        tiny(objective="gan", encoder_only=True).validate()
    with pytest.raises(OptionsError, match=r"encoder_only=.*must be true or false"):
        TrainingOptions.from_dict({**tiny().to_dict(), "encoder_only": "yes"})
    tiny(objective="vae", encoder_only=True).validate()
