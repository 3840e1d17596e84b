"""The release format on disk: save_pretrained / load_model round trip, the folder's exact contents,
the model card, and refusal (with a message naming the problem) of malformed configs and weights."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import struct
from pathlib import Path

import pytest
import torch
from huggingface_hub import metadata_load
from safetensors.torch import load_file, save_file

from dcvae_tools import load_model, save_pretrained
from dcvae_tools.card import render_model_card
from dcvae_tools.config import ModelConfig
from dcvae_tools.errors import ChecksumError, ConfigError, DCVAEError, ModelNotFoundError
from dcvae_tools.model import DCVAE, AttributeVector
from dcvae_tools.release import verify_files

LATENT = 16


pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(arch: str = "autogan32", seed: int = 0, attributes: bool = True) -> DCVAE:
    torch.manual_seed(seed)
    args = {"gf_dim": 16, "df_dim": 16} if arch == "autogan32" else {"ngf": 8, "ndf": 8}
    model = DCVAE(
        ModelConfig(
            architecture=arch,
            image_size=32,
            channels=3,
            latent_dim=LATENT,
            architecture_args=args,
            dataset="unit-test",
            preset="tiny",
            metrics={"fid": 99.5},
            sample_clamp=0.75,
        )
    )
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():  # non-default BatchNorm statistics: the buffers must travel too
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    if attributes:
        model.attributes = {
            "smile": AttributeVector(
                "smile", torch.randn(LATENT, generator=gen), 20, 19, metadata={"split": "test", "indices": [1, 2, 3]}
            ),
            "dark": AttributeVector("dark", torch.randn(LATENT, generator=gen), 7, 8, normalized=True),
        }
    return model


def _outputs(model: DCVAE) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z = torch.randn(3, LATENT, generator=torch.Generator().manual_seed(2))
    return model.encode(x), model.decode(z)


def assert_same_model(a: DCVAE, b: DCVAE) -> None:
    ea, da = _outputs(a)
    eb, db = _outputs(b)
    assert torch.equal(ea, eb)
    assert torch.equal(da, db)
    assert a.config == b.config
    assert sorted(a.attributes) == sorted(b.attributes)
    for name, attr in a.attributes.items():
        other = b.attributes[name]
        assert other.name == name
        assert torch.equal(attr.direction.float(), other.direction)
        assert (attr.num_positive, attr.num_negative, attr.normalized, attr.metadata) == (
            other.num_positive,
            other.num_negative,
            other.normalized,
            other.metadata,
        )


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[DCVAE, Path]:
    model = make_model()
    folder = tmp_path_factory.mktemp("release") / "tiny"
    save_pretrained(model, folder)
    return model, folder


def _copy(folder: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for item in folder.iterdir():
        (dest / item.name).write_bytes(item.read_bytes())
    return dest


# ----------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("arch", ["autogan32", "dcgan32"])
def test_round_trip_is_bit_identical(tmp_path: Path, arch: str) -> None:
    model = make_model(arch, seed=3)
    folder = save_pretrained(model, tmp_path / "out")
    loaded = load_model(folder)
    assert not loaded.training
    assert_same_model(model, loaded)
    assert loaded.source.source == "local"
    assert load_model(folder / "config.json").config == model.config  # a file inside the folder works too


def test_folder_contents_and_no_leftovers(saved: tuple[DCVAE, Path]) -> None:
    _, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "attributes.safetensors",
        "config.json",
        "model.safetensors",
    ]
    assert [p.name for p in folder.parent.iterdir()] == ["tiny"]  # no temporary folder left next to it


def test_folder_without_attributes_and_stale_attributes_removed(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_pretrained(make_model(seed=1), folder)
    assert (folder / "attributes.safetensors").is_file()
    plain = make_model(seed=2, attributes=False)
    save_pretrained(plain, folder)  # overwriting: the old attributes must not survive
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    loaded = load_model(folder)
    assert loaded.attributes == {}
    assert_same_model(plain, loaded)


def test_a_failed_save_leaves_the_previous_checkpoint_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dcvae_tools.release as release_module

    old = make_model(seed=1)
    folder = save_pretrained(old, tmp_path / "release")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    new = make_model(seed=2)
    # the last step fails: every new file is written and the old folder already moved aside
    real_replace, staged = release_module.os.replace, []

    def failing_replace(src, dst) -> None:
        if Path(src).name.startswith(".release.tmp-"):
            staged.extend(sorted(p.name for p in Path(src).iterdir()))
            raise OSError("injected: the disk went away")
        real_replace(src, dst)

    monkeypatch.setattr(release_module.os, "replace", failing_replace)
    with pytest.raises(OSError, match="injected"):
        save_pretrained(new, folder)
    monkeypatch.undo()
    assert staged == sorted(before)  # the failure came after the whole new checkpoint was written
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]  # no temporary folder left behind
    assert_same_model(old, load_model(folder))

    with pytest.raises(TypeError):  # a first save that fails leaves no folder at all
        save_pretrained(new, tmp_path / "fresh", model_card=123)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]
    with pytest.raises(TypeError):  # nor the parent folders it made for it
        save_pretrained(new, tmp_path / "runs" / "a" / "fresh", model_card=123)  # type: ignore[arg-type]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"]


def test_save_into_folders_that_cannot_be_renamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A symlink to a folder replaces the folder it points to as a whole; the working directory and '.' are
    written in place (moving files in)."""
    real = tmp_path / "real"
    save_pretrained(make_model(seed=1), real)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    new = make_model(seed=2, attributes=False)
    before = real.stat().st_ino
    assert save_pretrained(new, link) == link
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    assert real.stat().st_ino != before  # a new folder renamed into place, not files moved one by one
    assert not (real / "attributes.safetensors").exists()  # a release file the new model does not have
    assert_same_model(new, load_model(real))

    monkeypatch.chdir(real)
    newer = make_model(seed=3)
    save_pretrained(newer, ".")
    assert Path.cwd() == real.resolve()
    assert_same_model(newer, load_model(real))
    save_pretrained(new, real)  # the working directory, named by its path
    assert Path.cwd() == real.resolve() and not any(p.name.startswith(".") for p in real.iterdir())
    assert_same_model(new, load_model(real))


def test_save_refuses_to_replace_a_folder_with_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(DCVAEError, match=r"notes\.txt"):
        save_pretrained(make_model(), folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]


def test_model_card_front_matter(saved: tuple[DCVAE, Path]) -> None:
    _, folder = saved
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = metadata_load(folder / "README.md")
    assert meta is not None
    assert meta["library_name"] == "dcvae-tools"
    assert meta["datasets"] == ["unit-test"]
    assert "smile" in text and "dark" in text  # the attribute table


def test_no_pickle_anywhere(saved: tuple[DCVAE, Path]) -> None:
    _, folder = saved
    for name in ("model.safetensors", "attributes.safetensors"):
        data = (folder / name).read_bytes()
        assert not data.startswith(b"PK")  # not a torch.save zip
        # the safetensors layout: u64 header length, a JSON header, then exactly the raw tensor bytes
        (header_len,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8 : 8 + header_len])
        assert header["__metadata__"]["format"] == "pt"
        entries = [v for k, v in header.items() if k != "__metadata__"]
        assert entries
        assert 8 + header_len + max(e["data_offsets"][1] for e in entries) == len(data)
        dtypes = {e["dtype"] for e in entries}
        assert dtypes <= {"F32", "I64"}  # float weights; I64 for BatchNorm's num_batches_tracked
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    assert config["format_version"] == 1 and config["library"] == "dcvae-tools"
    (folder / "README.md").read_text(encoding="utf-8")


def test_weights_hold_encoder_and_decoder_without_spectral_norm_state(saved: tuple[DCVAE, Path]) -> None:
    model, folder = saved
    tensors = load_file(str(folder / "model.safetensors"))
    assert {k.split(".")[0] for k in tensors} == {"encoder", "decoder"}
    assert not any("parametrizations" in k or k.endswith(("_u", "_v")) for k in tensors)
    assert set(tensors) == set(model.state_dict())


# ----------------------------------------------------------------------------- malformed configs


def _write_config(folder: Path, text: str) -> None:
    (folder / "config.json").write_text(text, encoding="utf-8")


def test_bad_json_config(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "bad")
    _write_config(folder, '{"architecture": "autogan32",')
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_model(folder)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"extra_key": 1}, "extra_key"),
        ({"latent_dim": "16"}, "latent_dim"),
        ({"architecture": "vqgan"}, "architecture"),
        ({"format_version": 2}, "format_version"),
        ({"architecture_args": {"gf_dim": 16, "df_dim": 16, "depth": 2}}, "depth"),
    ],
)
def test_malformed_config_is_refused(saved: tuple[DCVAE, Path], tmp_path: Path, change: dict, named: str) -> None:
    folder = _copy(saved[1], tmp_path / "bad")
    data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    data.update(change)
    _write_config(folder, json.dumps(data))
    with pytest.raises(ConfigError, match=named):
        load_model(folder)


def test_a_number_too_long_to_convert_is_a_config_error(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "bad")
    text = (folder / "config.json").read_text(encoding="utf-8")
    _write_config(folder, text.replace('"latent_dim": 16', '"latent_dim": 1' + "0" * 5000, 1))
    with pytest.raises(ConfigError, match="is not a config"):
        load_model(folder)


def test_config_checked_before_weights_are_read(tmp_path: Path) -> None:
    """A hostile config (huge sizes plus an unknown key) next to garbage weights: the config error comes
    first, so no network is built and the weights are never parsed."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    _write_config(
        folder,
        json.dumps(
            {
                "architecture": "autogan32",
                "image_size": 32,
                "channels": 3,
                "latent_dim": 65536,
                "architecture_args": {"gf_dim": 4096, "df_dim": 4096},
                "exploit": True,
            }
        ),
    )
    (folder / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ConfigError, match="exploit"):
        load_model(folder)


# ----------------------------------------------------------------------------- malformed weights


def _rewrite_weights(folder: Path, edit) -> None:
    tensors = load_file(str(folder / "model.safetensors"))
    edit(tensors)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_missing_tensor(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    _rewrite_weights(folder, lambda t: t.pop("decoder.stem.weight"))
    with pytest.raises(ConfigError, match=r"missing.*decoder\.stem\.weight"):
        load_model(folder)


def test_extra_tensor(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    _rewrite_weights(folder, lambda t: t.__setitem__("decoder.backdoor", torch.zeros(3)))
    with pytest.raises(ConfigError, match=r"unexpected.*decoder\.backdoor"):
        load_model(folder)


def test_wrong_shape(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    _rewrite_weights(folder, lambda t: t.__setitem__("encoder.to_latent.weight", torch.zeros(2 * LATENT, 17)))
    with pytest.raises(ConfigError, match=r"encoder\.to_latent\.weight") as info:
        load_model(folder)
    assert "(32, 17)" in str(info.value) and "(32, 16)" in str(info.value)


@pytest.mark.parametrize("keep", [4, 100, -50])
def test_truncated_weights(saved: tuple[DCVAE, Path], tmp_path: Path, keep: int) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:keep])
    with pytest.raises(ConfigError, match=r"model\.safetensors"):
        load_model(folder)


def test_truncated_attributes(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    data = (folder / "attributes.safetensors").read_bytes()
    (folder / "attributes.safetensors").write_bytes(data[:-10])
    with pytest.raises(ConfigError, match=r"attributes\.safetensors"):
        load_model(folder)


@pytest.mark.parametrize(
    "header", [b"[]", b"{", b'{"__metadata__": {"attributes": "[1]"}}', b'{"__metadata__": {"attributes": 5}}']
)
def test_attributes_with_unreadable_header(saved: tuple[DCVAE, Path], tmp_path: Path, header: bytes) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    (folder / "attributes.safetensors").write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(ConfigError, match=r"attributes\.safetensors"):
        load_model(folder)


def test_attribute_of_wrong_size(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    save_file({"smile": torch.zeros(LATENT + 1)}, str(folder / "attributes.safetensors"))
    with pytest.raises(ConfigError, match="smile"):
        load_model(folder)


def test_attributes_load_in_name_order(tmp_path: Path) -> None:
    """safetensors hands tensors back in a different order on every read, so a loop over model.attributes printed
    differently from run to run; names now come back sorted."""
    from dcvae_tools import load_attributes, save_attributes

    names = ["pc07", "zeta", "boot", "pc01", "ink", "alpha", "pc10", "long_sleeves", "pc03", "open_shoe"]
    save_attributes({name: AttributeVector(name, torch.ones(LATENT), 1, 1) for name in names},
                    tmp_path / "attrs.safetensors")
    for _ in range(5):
        assert list(load_attributes(tmp_path / "attrs.safetensors")) == sorted(names)
    assert list(load_model("fashion-mnist-32").attributes) == sorted(load_model("fashion-mnist-32").attributes)


def test_attributes_files_round_trip_from_python(tmp_path: Path) -> None:
    from dcvae_tools import load_attributes, save_attributes

    gen = torch.Generator().manual_seed(5)
    first = AttributeVector("wide", torch.randn(LATENT, generator=gen), 20, 18, metadata={"split": "train"})
    second = AttributeVector("bright", torch.randn(LATENT, generator=gen), 3, 4, normalized=True)
    path = tmp_path / "attrs.safetensors"
    save_attributes([first, second], path)  # AttributeVectors, under their own names
    back = load_attributes(path)
    assert sorted(back) == ["bright", "wide"]
    for vector in (first, second):
        got = back[vector.name]
        assert torch.equal(got.direction, vector.direction)
        assert (got.num_positive, got.num_negative, got.normalized, got.metadata) == (
            vector.num_positive, vector.num_negative, vector.normalized, vector.metadata)
    save_attributes({"only": first}, path)  # a mapping, as model.attributes is; replaces the file whole
    assert list(load_attributes(path, LATENT)) == ["only"]
    with pytest.raises(ConfigError, match=rf"expected \({LATENT + 1},\)"):
        load_attributes(path, LATENT + 1)
    with pytest.raises(DCVAEError, match="two attributes are named 'wide'"):
        save_attributes([first, first], path)
    with pytest.raises(DCVAEError, match=r"its direction must be a float tensor \[D\], got \(2, 8\)"):
        save_attributes([AttributeVector("flat", torch.zeros(2, 8), 1, 1)], path)
    save_attributes(second, tmp_path / "one.safetensors")  # one AttributeVector alone
    assert list(load_attributes(tmp_path / "one.safetensors")) == ["bright"]
    (tmp_path / "one.safetensors").unlink()
    before = path.read_bytes()
    import safetensors.torch

    def failing_save(*args, **kwargs) -> bytes:  # the library failing, not our code replaced
        raise OSError("injected: out of memory")

    real_save, safetensors.torch.save = safetensors.torch.save, failing_save
    try:
        with pytest.raises(OSError, match="injected"):
            save_attributes([first], path)
    finally:
        safetensors.torch.save = real_save
    assert path.read_bytes() == before  # the old file kept whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attrs.safetensors"]  # no temporary file left
    model = make_model(seed=1)
    z = torch.zeros(2, LATENT)
    assert torch.allclose(model.edit(z, {back["wide"]: 2.0}, output="latents", unit="raw"), z + 2 * first.direction)
    with pytest.raises(DCVAEError, match=r"dcvae_tools.load_attributes\('attrs.safetensors'\)\[NAME\]"):
        model.edit(z, {"attrs.safetensors:wide": 1.0}, output="latents")  # the command line's form


def test_attribute_of_length_zero(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    folder = _copy(saved[1], tmp_path / "w")
    save_file({"smile": torch.zeros(LATENT), "frown": torch.ones(LATENT)}, str(folder / "attributes.safetensors"))
    with pytest.warns(UserWarning, match="'smile' has length 0 and would edit nothing, so it is left out") as record:
        loaded = load_model(folder)
    assert record[0].filename == __file__  # the caller's line, not the package's
    assert list(loaded.attributes) == ["frown"]  # the file's other directions stay usable


def test_missing_files(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    for name in ("config.json", "model.safetensors"):
        folder = _copy(saved[1], tmp_path / f"no-{name}")
        (folder / name).unlink()
        with pytest.raises(ModelNotFoundError, match=re.escape(name)):
            load_model(folder)


# ----------------------------------------------------------------------------- checksums


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_verified_load_reads_only_the_files_it_has_hashes_for(saved: tuple[DCVAE, Path], tmp_path: Path) -> None:
    from dcvae_tools.release import load_release

    model, folder = saved
    assert model.attributes, "the fixture must ship attributes for this test to mean anything"
    core = {name: _sha256(folder / name) for name in ("config.json", "model.safetensors")}
    everything = {**core, "attributes.safetensors": _sha256(folder / "attributes.safetensors")}
    assert set(load_release(folder, expected_sha256=everything).attributes) == set(model.attributes)
    # the folder still has attributes.safetensors, but nothing vouches for it: it is not read
    assert load_release(folder, expected_sha256=core).attributes == {}
    assert set(load_release(folder).attributes) == set(model.attributes)  # a plain local folder: all it has
    with pytest.raises(ChecksumError, match=r"config\.json"):
        load_release(folder, expected_sha256={"model.safetensors": core["model.safetensors"]})


def test_verify_files(saved: tuple[DCVAE, Path]) -> None:
    _, folder = saved
    good = {name: _sha256(folder / name) for name in ("config.json", "model.safetensors")}
    verify_files(folder, good)  # no error
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        verify_files(folder, {**good, "model.safetensors": wrong})
    message = str(info.value)
    assert "model.safetensors" in message
    assert wrong in message and good["model.safetensors"] in message
    with pytest.raises(ModelNotFoundError, match=r"weights\.bin"):
        verify_files(folder, {"weights.bin": wrong})


def test_model_card_explains_metrics_and_attributes() -> None:
    config = ModelConfig(
        architecture="autogan32",
        image_size=32,
        channels=1,
        latent_dim=8,
        preset="my-preset",
        metrics={"recon_mse_test": 0.046305130392117706, "edit_success_boot": 0.991},
    )
    boot = AttributeVector("boot", torch.ones(8), 20, 20, metadata={"rule": "Ankle boot (9) vs Sneaker (7)"})
    card = render_model_card(config, {"boot": boot})
    assert "| `recon_mse_test` | 0.04631 | reconstruction mean squared error" in card  # rounded, explained
    assert "| `boot` | 20 | 20 | Ankle boot (9) vs Sneaker (7) |" in card
    # "my-preset" names no released model, so the example loads the folder; a released name or repo loads by name
    assert 'load_model("path/to/this/folder")' in card and '{"boot": 1.5}' in card
    assert 'load_model("mnist-32")' in render_model_card(dataclasses.replace(config, preset="mnist-32"))
    assert 'load_model("org/my-dcvae")' in render_model_card(config, repo_id="org/my-dcvae")
    # principal directions are named apart from the table, which describes mean differences only
    pc = AttributeVector("pc01", torch.ones(8), 0, 0, metadata={"method": "pca"})
    with_pc = render_model_card(config, {"boot": boot, "pc01": pc})
    assert "| `pc01` |" not in with_pc and "principal directions `pc01`" in with_pc


def test_model_card_says_which_prior_its_sample_metrics_drew_from() -> None:
    from dcvae_tools.prior import LatentPrior

    prior = LatentPrior(torch.ones(1), torch.zeros(1, 8), torch.eye(8)[None], {"count": 100, "dataset": "x"})
    sampled = ModelConfig(architecture="autogan32", image_size=32, channels=1, latent_dim=8,
                          metrics={"fd10k_classifier": 70.8, "recon_mse_test": 0.02})
    card = render_model_card(sampled, latent_prior=prior)
    assert "a mixture of 1 full-covariance Gaussians fitted by EM to the latents of 100 x training images" in card
    restarted = LatentPrior(prior.weights, prior.means, prior.scale_tril, {**prior.metadata, "restarts": 10})
    assert "fitted by EM (the most likely of 10 starts) to the latents" in render_model_card(
        sampled, latent_prior=restarted)
    assert "The sample metrics in the table above follow the paper (N(0, I))" in card
    from dcvae_tools.card import SAMPLE_METRICS
    from training.metrics.metric_main import list_metrics

    sampled_names = {m for m in list_metrics() if m.startswith(("fd", "fid", "sample_"))}
    assert sampled_names == SAMPLE_METRICS  # a new sampling metric must be named in the card's set
    for metrics in ({"recon_mse_test": 0.02}, {"latent_kl_test": 30.0}):  # the KL's description names N(0, I)
        assert "sample metrics" not in render_model_card(dataclasses.replace(sampled, metrics=metrics),
                                                         latent_prior=prior)


def test_model_card_metadata_is_what_the_hub_reads() -> None:
    from huggingface_hub import ModelCard

    metrics = {"recon_mse_test": 0.0463, "edit_success_boot": 0.991, "steps": 4000, "broken": float("nan"),
               "flag": True, "note": "text"}
    config = ModelConfig(architecture="autogan32", image_size=32, channels=1, latent_dim=8, dataset="fashion-mnist",
                         preset="my-preset", metrics=metrics)
    data = ModelCard(render_model_card(config, repo_id="org/my-dcvae")).data
    assert (data.license, data.library_name, data.pipeline_tag) == (
        "apache-2.0", "dcvae-tools", "unconditional-image-generation")
    assert {"dc-vae", "vae", "gan", "contrastive-learning", "image-generation", "latent-editing"} <= set(data.tags)
    assert data.datasets == ["fashion-mnist"] and data.model_name == "org/my-dcvae"
    results = {r.metric_type: r for r in data.eval_results}
    assert {k: r.metric_value for k, r in results.items()} == {"recon_mse_test": 0.0463, "edit_success_boot": 0.991,
                                                               "steps": 4000}  # finite numbers only
    assert all(r.dataset_name == r.dataset_type == "fashion-mnist" for r in results.values())
    assert all(r.task_type == "unconditional-image-generation" for r in results.values())
    assert results["recon_mse_test"].metric_name == "Reconstruction MSE (test)"
    # without a dataset the metrics stay in the card's table, and the metadata stays valid
    bare = ModelCard(render_model_card(ModelConfig(architecture="autogan32", image_size=32, channels=1,
                                                   latent_dim=8, metrics={"recon_mse_test": 0.05}))).data
    assert bare.eval_results is None and bare.pipeline_tag == "unconditional-image-generation"
