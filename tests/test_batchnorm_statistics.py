"""The decoder's BatchNorm statistics recomputed from posterior draws, and the export option that does it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dcvae_tools import load_model
from dcvae_tools.config import ModelConfig
from dcvae_tools.networks import build_network
from training.batchnorm_statistics import batchnorm_layers, recompute_decoder_batchnorm
from training.export import POSTERIOR_IMAGES, export_run, model_from_run
from training.latent_prior import posterior_draws
from training.presets import get_preset
from training.training_loop import training_loop


def _decoder(architecture: str) -> nn.Module:
    config = ModelConfig(architecture=architecture, image_size=32, channels=1, latent_dim=8,
                         architecture_args={"gf_dim": 8, "df_dim": 8} if architecture == "autogan32" else {"ngf": 4})
    torch.manual_seed(0)
    return build_network(config, "decoder").eval()


def _inputs_in_eval_mode(decoder: nn.Module, layer: nn.Module, latents: torch.Tensor) -> torch.Tensor:
    seen: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    with torch.no_grad():
        for batch in latents.split(64):
            decoder(batch)
    hook.remove()
    x = torch.cat(seen).double()
    return x.transpose(0, 1).reshape(x.shape[1], -1)  # [channels, everything else]


@pytest.mark.parametrize("architecture", ["autogan32", "dcgan32"])
def test_every_layer_gets_the_statistics_of_the_inputs_it_sees_at_inference(architecture):
    decoder = _decoder(architecture)
    mu, logvar = torch.randn(300, 8) * 2 + 1, torch.full((300, 8), -2.0)
    before = [layer.running_mean.clone() for layer in batchnorm_layers(decoder)]
    recompute_decoder_batchnorm(decoder, mu, logvar, seed=3)
    assert not decoder.training
    latents = posterior_draws(mu, logvar, seed=3)
    for layer, old_mean in zip(batchnorm_layers(decoder), before, strict=True):
        # measured after all layers were set: a layer set before the ones in front of it would not match
        inputs = _inputs_in_eval_mode(decoder, layer, latents)
        torch.testing.assert_close(layer.running_mean, inputs.mean(1).float(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(layer.running_var, inputs.var(1).float(), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(layer.running_mean, old_mean)


def test_the_statistics_depend_on_the_posterior_not_on_the_batch_size():
    mu, logvar = torch.randn(200, 8), torch.full((200, 8), -1.0)
    a, b = _decoder("autogan32"), _decoder("autogan32")
    recompute_decoder_batchnorm(a, mu, logvar, batch_size=64)
    recompute_decoder_batchnorm(b, mu, logvar, batch_size=7)
    (la,), (lb,) = batchnorm_layers(a), batchnorm_layers(b)
    torch.testing.assert_close(la.running_var, lb.running_var, rtol=1e-4, atol=1e-6)
    c = _decoder("autogan32")
    recompute_decoder_batchnorm(c, mu + 3, logvar)  # another posterior: other statistics
    assert not torch.allclose(batchnorm_layers(c)[0].running_mean, la.running_mean)


def test_a_decoder_without_batchnorm_is_refused():
    with pytest.raises(ValueError, match="no BatchNorm"):
        recompute_decoder_batchnorm(nn.Sequential(nn.Linear(8, 8)), torch.zeros(4, 8), torch.zeros(4, 8))


def test_export_with_posterior_statistics_changes_only_the_batchnorm_statistics(tmp_path):
    run = tmp_path / "run"
    training_loop(get_preset("tiny").override(total_iterations=2, log_every=1), run, progress=False)
    export_run(run, tmp_path / "training")
    messages: list[str] = []
    export_run(run, tmp_path / "posterior", decoder_statistics="posterior", progress=messages.append)
    kept, recomputed = load_model(tmp_path / "training"), load_model(tmp_path / "posterior")
    assert f"posterior draws of {POSTERIOR_IMAGES:,} training images" in recomputed.config.description
    assert "posterior" not in kept.config.description
    assert len(messages) == 1 and "running statistics recomputed" in messages[0]
    changed = {
        name
        for name, value in recomputed.decoder.state_dict().items()
        if not torch.equal(value, kept.decoder.state_dict()[name])
    }
    assert changed and all(name.endswith(("running_mean", "running_var")) for name in changed)
    for a, b in zip(kept.encoder.state_dict().values(), recomputed.encoder.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the statistics are those of the run's own model decoding the draws
    reference = model_from_run(run)
    assert not torch.equal(batchnorm_layers(reference.decoder)[0].running_var,
                           batchnorm_layers(recomputed.decoder)[0].running_var)
    with pytest.raises(ValueError, match="decoder_statistics='prior'"):
        export_run(run, tmp_path / "bad", decoder_statistics="prior")
    assert not (tmp_path / "bad").exists()


def test_a_training_split_smaller_than_asked_is_drawn_whole_and_counted():
    from training.batchnorm_statistics import recompute_from_training_images

    model = load_model("mnist-32")  # its training split is 4,000 MNIST digits
    assert model.config.dataset == "mnist5k"
    shifts, drawn = recompute_from_training_images(model, images=POSTERIOR_IMAGES)
    assert drawn == 4000 and list(shifts) == ["to_image.0"]


def test_a_report_must_have_measured_the_statistics_the_release_ships(tmp_path):
    import json

    from training.cli import UserError, _release_metrics
    from training.export import POSTERIOR_STATISTICS_NOTE

    report = tmp_path / "report.json"

    def write(description):
        report.write_text(json.dumps({"metrics": {"rfd_classifier": 1.4}, "details": {
            "settings": {"sample_prior": "standard"}, "model_config": {"description": description}}}))

    write(f"small model; 64,000 iterations of 64 images; {POSTERIOR_STATISTICS_NOTE} of 10,000 training images")
    assert _release_metrics(report, "posterior") == {"rfd_classifier": 1.4}
    with pytest.raises(UserError, match=r"'posterior' decoder BatchNorm statistics.*--decoder-statistics posterior"):
        _release_metrics(report, "training")
    write("small model; 64,000 iterations of 64 images")
    assert _release_metrics(report, "training") == {"rfd_classifier": 1.4}
    with pytest.raises(UserError, match=r"'training' decoder BatchNorm statistics.*--decoder-statistics training"):
        _release_metrics(report, "posterior")


def test_cli_refuses_an_unknown_statistics_choice_and_a_release_folder_to_recompute(tmp_path):
    from typer.testing import CliRunner

    from dcvae_tools.manifest import BUNDLED_WEIGHTS_DIR
    from training.cli import UserError, app

    runner = CliRunner()
    result = runner.invoke(app, ["export", str(BUNDLED_WEIGHTS_DIR / "mnist-32"), "-o", str(tmp_path / "x"),
                                 "--decoder-statistics", "prior"])
    assert isinstance(result.exception, UserError) and "checkpoint.pt" in str(result.exception)
    run = tmp_path / "run"
    training_loop(get_preset("tiny").override(total_iterations=1, log_every=1), run, progress=False)
    result = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "x"), "--decoder-statistics", "prior"])
    assert isinstance(result.exception, UserError)
    assert "--decoder-statistics prior: must be one of training, posterior" in str(result.exception)
    assert not (tmp_path / "x").exists()
    result = runner.invoke(app, ["release", str(BUNDLED_WEIGHTS_DIR / "mnist-32"), "--name", "m", "--push", "org/m",
                                 "--decoder-statistics", "posterior"])
    assert isinstance(result.exception, UserError) and "--decoder-statistics apply to run folders" in str(
        result.exception)
    result = runner.invoke(app, ["release", str(BUNDLED_WEIGHTS_DIR / "mnist-32"), "--name", "m", "--push", "org/m",
                                 "--attribute-draws", "10"])
    assert isinstance(result.exception, UserError) and "--attribute-draws and" in str(result.exception)
