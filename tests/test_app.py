"""`dcvae app`, the editor in the browser: its handlers against the Python API, its error messages, and the page
driven by a real headless Chromium (Debian's `chromium` and `chromium-driver`, through selenium).

The browser test starts `dcvae app` as a subprocess on 127.0.0.1, uploads an example, moves attribute sliders and
checks that the image the page shows equals what `model.edit` returns for the same strengths; it takes the
screenshot the README shows (written to docs/figures/app.png only with DCVAE_UPDATE_FIGURES=1, as
docs/make_figures.sh sets it, so a test run leaves the checkout as it was); it fetches the edit's and the mix's
downloads through their links and checks them against the Python API, and drives the Interpolate, Mix and Sample
tabs. It skips only where no browser is installed.
"""

from __future__ import annotations

import base64
import io
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from ranks import free_port, sigint_as_in_a_terminal
from safetensors import safe_open
from safetensors.torch import load_file

from dcvae_tools import load_model
from dcvae_tools.app.handlers import AppError, Editor, example_images
from dcvae_tools.app.sliders import MAX_SLIDERS, edit_directions, edit_kwargs
from dcvae_tools.errors import DCVAEError, ImageError, ModelNotFoundError
from dcvae_tools.latent import random_mask

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "docs" / "examples" / "fashion-mnist"
SCREENSHOT = REPO / "docs" / "figures" / "app.png"
"""Where the README's screenshot of the editor lives; the browser test writes it when DCVAE_UPDATE_FIGURES=1."""
CHROMIUM = os.environ.get("DCVAE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("DCVAE_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
INSTALL = 'pip install "gradio>=6.0,<7"'


def _need_gradio() -> None:
    """The app extra is part of the test install (README's test command): without it these tests fail, saying so."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        pytest.fail(f"gradio is not installed: {INSTALL} (the README's test command installs it)")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def _api_image(model: Any, tensor: torch.Tensor) -> np.ndarray:
    return _pixels(model.to_pil(tensor)[0])


@pytest.fixture(scope="module")
def model() -> Any:
    return load_model()


@pytest.fixture
def editor(tmp_path: Path) -> Editor:
    from dcvae_tools.app.files import TempFiles

    return Editor(offline=True, files=TempFiles(tmp_path / "downloads"))


# ---------------------------------------------------------------------------- handlers, no browser


def test_sliders_cover_every_shipped_direction(model: Any) -> None:
    directions = edit_directions(model)
    assert sorted(d.key for d in directions) == sorted(model.attributes)
    assert len(directions) <= MAX_SLIDERS, "the page has fewer slider slots than the default model has directions"
    unit = edit_kwargs(model).get("unit", "raw")
    for d in directions:
        assert d.unit == unit and d.title.endswith(f"({unit})")
        assert d.minimum < 0 < d.maximum and 0 < d.step < d.maximum


def test_handlers_equal_the_python_api(editor: Editor, model: Any) -> None:
    spec = editor.default_model
    tshirt, dress = str(EXAMPLES / "tshirt.png"), str(EXAMPLES / "dress.png")
    z = editor.encode(spec, tshirt)
    torch.testing.assert_close(z, model.encode([tshirt]))
    lm = editor.load(spec)
    names = [d.key for d in lm.directions]
    values = [0.0] * len(names)
    values[names.index("long_sleeves")], values[names.index("ink")] = 1.5, -0.5
    expected = model.edit(z, {"long_sleeves": 1.5, "ink": -0.5}, **edit_kwargs(model))
    assert np.abs(_pixels(editor.edit(spec, z, values)) - _api_image(model, expected)).max() <= 1

    png, latents = editor.edit_downloads(spec, z, values)
    saved = load_file(latents)
    torch.testing.assert_close(saved["original"], z)
    torch.testing.assert_close(saved["latents"], model.edit(z, {"long_sleeves": 1.5, "ink": -0.5}, output="latents",
                                                            **edit_kwargs(model)))
    assert np.abs(_pixels(Image.open(png)) - _api_image(model, expected)).max() <= 1
    with safe_open(latents, framework="pt") as f:  # `dcvae decode` can tell whose latents these are
        assert f.metadata()["weights_sha256"] == model.weights_sha256()

    frames, strip, gif, path_file = editor.interpolate(spec, tshirt, dress, 5, "slerp")
    path = model.interpolate(tshirt, dress, steps=5, method="slerp")
    assert len(frames) == 5 and all(np.abs(_pixels(f) - _api_image(model, path[i:i + 1])).max() <= 1
                                    for i, f in enumerate(frames))
    assert Image.open(gif).n_frames >= 5 and load_file(path_file)["latents"].shape == (5, model.latent_dim)

    row, mixes, _, mix_file = editor.mix(spec, tshirt, dress, 0.5, 3, 2)
    assert row.width > row.height and len(mixes) == 2
    generator = torch.Generator().manual_seed(3)
    from dcvae_tools.latent import random_mask

    masks = torch.stack([random_mask(model.latent_dim, 0.5, generator) for _ in range(2)])
    expected_mix = model.mix(tshirt, dress, mask=masks)
    assert all(np.abs(_pixels(m) - _api_image(model, expected_mix[i:i + 1])).max() <= 1 for i, m in enumerate(mixes))
    assert load_file(mix_file)["masks"].bool().equal(masks)

    samples, grid, _ = editor.sample(spec, 7, 4)
    expected_samples = model.sample(4, seed=7)
    assert all(np.abs(_pixels(s) - _api_image(model, expected_samples[i:i + 1])).max() <= 1
               for i, s in enumerate(samples))
    for written in (png, latents, strip, gif, path_file, mix_file, grid):
        assert Path(written).resolve().is_relative_to(editor.files.root.resolve())


def test_bad_inputs_are_messages(editor: Editor, tmp_path: Path) -> None:
    spec = editor.default_model
    with pytest.raises(AppError, match="no image"):
        editor.edit(spec, None, [1.0])
    with pytest.raises(AppError, match="upload an image"):
        editor.encode(spec, None)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ImageError, match=r"broken\.png"):
        editor.encode(spec, str(broken))
    with pytest.raises(ModelNotFoundError):
        editor.load("./no-such-model/")
    with pytest.raises(AppError, match="does not load files or folders"):
        Editor(offline=True, allow_local_folders=False).load(str(REPO / "dcvae_tools" / "weights" / "mnist-32"))
    with pytest.raises(AppError, match="count must be between 1"):
        editor.sample(spec, 0, 1000)
    with pytest.raises(AppError, match="steps must be between"):
        editor.interpolate(spec, str(EXAMPLES / "tshirt.png"), str(EXAMPLES / "dress.png"), 1, "lerp")
    with pytest.raises(DCVAEError, match="fraction"):
        editor.mix(spec, str(EXAMPLES / "tshirt.png"), str(EXAMPLES / "dress.png"), 1.5, 0, 1)
    with pytest.raises(AppError, match=r"seed must be between 0 and 2\*\*64 - 1, got 100000000000000000000"):
        editor.mix(spec, str(EXAMPLES / "tshirt.png"), str(EXAMPLES / "dress.png"), 0.5, 1e20, 1)


def test_a_public_page_loads_no_server_path_of_any_spelling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page others can reach loads released names and Hub repo ids only: `load_model` would load any existing
    file or folder given relative (`app.py`, `runs/x`), so visitors' names never reach the file system, and the
    answer is the same whether such a path exists or not."""
    from dcvae_tools.app.handlers import _spelled_as_a_release_or_hub_repo

    release = REPO / "dcvae_tools" / "weights" / "mnist-32"
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (tmp_path / "runs" / "mine" / name).symlink_to(release / name)
    (tmp_path / "app.py").write_text("")
    monkeypatch.chdir(tmp_path)
    public = Editor(offline=True, allow_local_folders=False)
    for spec in (".", "..", "app.py", "runs/../runs/mine", "docs/../../../../tmp/x", str(release), "./runs/mine",
                 "~/x", "runs\\mine", "runs/mine/"):
        assert not _spelled_as_a_release_or_hub_repo(spec), spec
        with pytest.raises(AppError, match="does not load files or folders by path"):
            public.load(spec)
    # spelled as a Hub repo id: looked up on the Hub only (offline here, with the visitors' own empty cache), so an
    # existing folder of that name and a missing one get the same answer
    answers = []
    for spec in ("runs/mine", "runs/missing"):
        with pytest.raises(DCVAEError) as info:
            public.load(spec)
        assert not isinstance(info.value, AppError)
        answers.append(str(info.value).replace(spec, "NAME"))
    assert answers[0] == answers[1]
    assert public.load("mnist-32").model.config.preset == "mnist-32"  # a released name still loads
    assert not _spelled_as_a_release_or_hub_repo("org/name\n")
    from dcvae_tools.manifest import load_manifest

    # no Hub repo of the server's cache is offered to visitors
    assert public.model_choices() == list(dict.fromkeys([public.default_model, *load_manifest().models]))
    # the first model is the owner's choice: `dcvae app -m runs/mine --host 0.0.0.0` loads it
    owner = Editor("runs/mine", offline=True, allow_local_folders=False)
    assert owner.load(None).model.config.latent_dim == public.load("mnist-32").model.config.latent_dim
    assert Editor(offline=True).load("runs/mine").spec == "runs/mine"  # on this machine only, folders load


@pytest.mark.parametrize(
    ("host", "share", "environment", "private"),
    [("127.0.0.1", False, None, True), ("localhost", False, None, True), ("::1", False, None, True),
     ("127.0.0.1", True, None, False), ("0.0.0.0", False, None, False), ("192.168.1.5", False, None, False),
     ("my-host.example", False, None, False), (None, False, None, True), (None, False, "0.0.0.0", False),
     (None, False, "", False),  # gradio binds every interface for an empty GRADIO_SERVER_NAME
     ("", False, None, True), ("", False, "0.0.0.0", False)],  # an empty host is no host: gradio's default
)
def test_server_paths_load_by_default_only_on_a_page_nobody_else_reaches(
    host: str | None, share: bool, environment: str | None, private: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dcvae_tools.app import serves_only_this_machine

    if environment is None:
        monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    else:
        monkeypatch.setenv("GRADIO_SERVER_NAME", environment)
    assert serves_only_this_machine(host, share) is private


def test_a_public_page_loads_visitors_hub_repos_without_the_servers_token_or_cache(tmp_path: Path,
                                                                                   local_hub: Any) -> None:
    """HF_TOKEN may read private repos, and a private repo the owner downloaded sits in the server's Hub cache:
    a visitor's load uses neither (the Hub answers it as it answers anyone)."""
    from dcvae_tools import save_pretrained

    local_hub.add_revision("org/tiny-app", save_pretrained(load_model("mnist-32"), tmp_path / "release"))
    code = ("from dcvae_tools.app.handlers import Editor\n"
            "import sys\n"
            "Editor(allow_local_folders=sys.argv[1] == 'owner').load('org/tiny-app')\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "DCVAE_"))}
    env.update(HF_ENDPOINT=local_hub.endpoint, HF_TOKEN="hf_server_secret", HF_HOME=str(tmp_path / "hf"),
               PYTHONPATH=str(REPO))
    for mode in ("owner", "owner-again", "public"):  # one Hub cache: the owner's download is in it before the visitor's
        local_hub.requests.clear()
        local_hub.authorizations.clear()
        done = subprocess.run([sys.executable, "-c", code, mode.removesuffix("-again")], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        sent = [header for header in local_hub.authorizations if header]
        weights = [path for method, path in local_hub.requests if method == "GET" and "model.safetensors" in path]
        if mode == "owner":  # on this machine the owner's token is used as huggingface_hub uses it everywhere
            assert sent and all("hf_server_secret" in header for header in sent) and weights
        elif mode == "owner-again":
            assert not weights  # served from the owner's cache
        else:
            assert local_hub.authorizations and not sent, sent
            assert weights, "the visitor's load was served from the owner's cache"


def test_page_errors_are_one_line_without_traceback() -> None:
    _need_gradio()
    from dcvae_tools.app.ui import Note, _guard

    @_guard(2)
    def crash() -> tuple[int, int]:
        raise RuntimeError("boom\nsecond line")

    @_guard(1)
    def refuse() -> int:
        raise AppError("no image: upload one")

    *outputs, message = crash()
    assert len(outputs) == 2 and "internal error (RuntimeError: boom second line)" in message
    assert "Traceback" not in message and "\n" not in message
    assert refuse()[-1].endswith("Error: no image: upload one</span>")

    @_guard(1)
    def noted() -> tuple[int, Note]:
        return 1, Note("far <outside>")

    assert noted() == (1, '<span class="dcvae-note">Note: far &lt;outside&gt;</span>')

    @_guard(2, on_error=lambda name: (f"back to {name}", None))
    def load(name: str) -> tuple[str, str]:
        raise AppError(f"no model {name}")

    assert load("m") == ("back to m", None, '<span class="dcvae-error">Error: no model m</span>')


def test_messages_name_uploads_without_the_servers_folders() -> None:
    _need_gradio()
    from dcvae_tools.app.files import app_temp_root
    from dcvae_tools.app.ui import _message

    upload = app_temp_root() / "gradio" / "0f3a" / "photo.heic"
    assert _message(ImageError(f"{upload}: not an image file")) == "photo.heic: not an image file"
    assert _message(ImageError(f"{app_temp_root() / 'x.png'}: bad")) == "x.png: bad"
    assert _message(ImageError("/home/me/photo.heic: not an image file")).startswith("/home/me/photo.heic")


def test_directions_past_the_sliders_are_named_above_them(model: Any) -> None:
    _need_gradio()
    from dcvae_tools.app.handlers import LoadedModel
    from dcvae_tools.app.sliders import Direction
    from dcvae_tools.app.ui import _slider_note

    def loaded(count: int) -> LoadedModel:
        directions = [Direction(f"d{i:02d}", f"d{i:02d}", "std", -3.0, 3.0, 0.05) for i in range(count)]
        return LoadedModel("m", model, directions, [], "", unit="std")

    assert _slider_note(loaded(MAX_SLIDERS)) == loaded(MAX_SLIDERS).unit_note
    note = _slider_note(loaded(MAX_SLIDERS + 2))
    assert note.startswith(loaded(1).unit_note) and f"other 2 directions (`d{MAX_SLIDERS:02d}`, " \
        f"`d{MAX_SLIDERS + 1:02d}`)" in note and "dcvae edit --attribute" in note
    assert f"`d{MAX_SLIDERS - 1:02d}`" not in note


def test_old_downloads_are_deleted_as_new_ones_are_written(tmp_path: Path) -> None:
    from dcvae_tools.app.files import TempFiles

    files = TempFiles(tmp_path, max_age_s=3600, prune_every_s=0)
    old = files.png(Image.new("L", (4, 4)), "old.png")
    kept = files.png(Image.new("L", (4, 4)), "kept.png")
    two_hours_ago = time.time() - 7200
    os.utime(old.parent, (two_hours_ago, two_hours_ago))
    new = files.png(Image.new("L", (4, 4)), "new.png")
    assert not old.parent.exists() and kept.is_file() and new.is_file()
    assert TempFiles(tmp_path, max_age_s=3600).prune() == []


def test_an_image_far_outside_the_model_gets_a_note(editor: Editor) -> None:
    model = editor.load("mnist-32").model
    assert model.latent_stats is not None, "mnist-32 ships latent statistics: the domain check needs them"
    _, _, note = editor.encode_view("mnist-32", str(EXAMPLES / "tshirt.png"))  # a T-shirt for the digit model
    assert note and "far outside" in note
    assert editor.encode_view("mnist-32", str(REPO / "docs" / "examples" / "mnist" / "digit3.png"))[2] is None


def test_without_gradio_one_clear_line(tmp_path: Path) -> None:
    code = ("import sys\nsys.modules['gradio'] = None\nsys.argv = ['dcvae', 'app']\n"
            "from dcvae_tools.cli import main\nmain()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and INSTALL in lines[0], proc.stderr


def test_a_busy_port_is_one_clear_line_before_the_model_loads(tmp_path: Path) -> None:
    """gradio would fail only after the model loaded, naming its own settings (GRADIO_SERVER_PORT, launch())."""
    _need_gradio()
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        # a model that does not exist: were it loaded first, the error would name it instead
        proc = subprocess.run([sys.executable, "-m", "dcvae_tools.cli", "app", "-p", str(port), "-m", "no-such-model",
                               "--offline"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0] == (
        f"error: port {port} on 127.0.0.1 is in use (another `dcvae app`?): pick another port, or leave it out for "
        "the first free one from 7860"
    ), proc.stderr
    with socket.socket() as holder:  # and the Python API says the same, before loading anything
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        from dcvae_tools.app import PortInUseError, launch

        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):
            launch("no-such-model", port=port, offline=True)
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):  # gradio's default host
            launch("no-such-model", host="", port=port, offline=True)


def test_the_install_hint_installs_what_the_app_extra_does() -> None:
    import tomllib

    from dcvae_tools.app import INSTALL_HINT

    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["app"]
    assert len(extra) == 1 and INSTALL_HINT == f'pip install "{extra[0]}"' == INSTALL


def test_app_help_imports_neither_torch_nor_gradio() -> None:
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom dcvae_tools.cli import app\n"
            "result = CliRunner().invoke(app, ['app', '--help'])\nassert result.exit_code == 0, result.output\n"
            "assert '--share' in result.output and '--port' in result.output\n"
            "print(sorted(m for m in ('torch', 'gradio') if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- the page in a real browser


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        pytest.skip(f"no browser: {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`dcvae app` in a subprocess, with its own empty working folder, home and temporary folder."""
    yield from _serve(tmp_path_factory.mktemp("app"))


def _serve(root: Path) -> Iterator[dict[str, Any]]:
    _need_gradio()
    folders = {name: root / name for name in ("cwd", "home", "tmp")}
    for folder in folders.values():
        folder.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GRADIO_", "DCVAE_"))}
    env.update(HOME=str(folders["home"]), TMPDIR=str(folders["tmp"]), HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), NO_PROXY="127.0.0.1,localhost",
               no_proxy="127.0.0.1,localhost")
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "dcvae_tools.cli", "app", "--port", str(port), "--offline"],
                            cwd=folders["cwd"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=sigint_as_in_a_terminal)
    url = f"http://127.0.0.1:{port}/"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"dcvae app exited ({proc.returncode}): {(root / 'server.log').read_text()}")
        try:
            return opener.open(url, timeout=2).status == 200
        except OSError:
            return False

    info = {"url": url, "proc": proc, "folders": folders, "opener": opener, "log": root / "server.log"}
    try:
        _wait(up, 90, "dcvae app to serve its page")
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # as Ctrl-C: gradio closes, the temporary folder is removed
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def _image_src(driver: Any, elem_id: str) -> str | None:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return found[0].get_attribute("src") if found else None


def _shown_image(server: dict[str, Any], src: str) -> np.ndarray:
    if src.startswith("data:"):
        data = base64.b64decode(src.split(",", 1)[1])
    else:
        data = server["opener"].open(src, timeout=10).read()
    return _pixels(Image.open(io.BytesIO(data)))


def _slider(driver: Any, label: str) -> tuple[Any, str]:
    """The range input of the slider whose label starts with ``label``, and the unit its label shows."""
    from selenium.webdriver.common.by import By

    for block in driver.find_elements(By.CSS_SELECTOR, "[id^=dcvae-slider-]"):
        title = block.find_element(By.CSS_SELECTOR, "label span").text if block.is_displayed() else ""
        match = re.fullmatch(rf"{re.escape(label)} \((\w+)\)", title.strip())
        if match:
            return block.find_element(By.CSS_SELECTOR, "input[type=range]"), match.group(1)
    raise AssertionError(f"no slider labelled {label!r} on the page")


def _move(driver: Any, slider: Any, share: float) -> float:
    """Click ``share`` of the way along a slider, as a person would; returns the value it took."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
    width = slider.size["width"]
    ActionChains(driver).move_to_element_with_offset(slider, int((share - 0.5) * width), 0).click().perform()
    return float(slider.get_attribute("value"))


def _settled(driver: Any, elem_id: str, before: str | None, server: dict[str, Any]) -> np.ndarray:
    """The image ``elem_id`` shows once it differs from ``before`` and no request is pending."""
    src = _wait(lambda: (s := _image_src(driver, elem_id)) and s != before and s, 30, f"{elem_id} to update")
    time.sleep(0.3)  # a later update of the same slider would replace it: wait for the last one
    src = _image_src(driver, elem_id)
    assert src is not None
    return _shown_image(server, src)


def _downloads(driver: Any, elem_id: str, server: dict[str, Any]) -> dict[str, bytes]:
    """The files a ``gr.File`` output lists, fetched through their links as a browser's download would."""
    from selenium.webdriver.common.by import By

    links = _wait(lambda: [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} a[href]")
                           if a.get_attribute("href")], 30, f"the links of {elem_id}")
    return {Path(urllib.request.url2pathname(link.split("?")[0])).name: server["opener"].open(link, timeout=10).read()
            for link in links}


def _latents(data: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load

    return load(data)


def _pick_examples(driver: Any, prefix: str, names: tuple[str, str], stems: list[str]) -> None:
    """Click example ``names[0]`` under A and ``names[1]`` under B of the two-image tab ``prefix``."""
    from selenium.webdriver.common.by import By

    for gallery, name in ((f"{prefix}-a-examples", names[0]), (f"{prefix}-b-examples", names[1])):
        thumbnails = _wait(lambda g=gallery: [b for b in driver.find_elements(By.CSS_SELECTOR, f"#{g} button")
                                              if b.is_displayed() and b.find_elements(By.TAG_NAME, "img")],
                           30, f"the examples of {gallery}")
        assert len(thumbnails) == len(stems)
        thumbnails[stems.index(name)].click()
    _wait(lambda: _image_src(driver, f"{prefix}-a") and _image_src(driver, f"{prefix}-b"), 30, "A and B")


def test_editor_in_a_real_browser(browser: Any, server: dict[str, Any], model: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    tshirt = EXAMPLES / "tshirt.png"
    driver = browser
    driver.get(server["url"])
    _wait(lambda: driver.find_elements(By.CSS_SELECTOR, "#dcvae-input input[type=file]"), 30, "the page")
    assert "fashion-mnist-32" in driver.find_element(By.ID, "dcvae-card").text

    # upload: the reconstruction and the (unedited) result appear, equal to the Python API's
    driver.find_element(By.CSS_SELECTOR, "#dcvae-input input[type=file]").send_keys(str(tshirt))
    recon = _settled(driver, "dcvae-recon", None, server)
    z = model.encode([str(tshirt)])
    assert np.abs(recon - _api_image(model, model.decode(z))).max() <= 1
    unedited_src = _wait(lambda: _image_src(driver, "dcvae-edited"), 30, "the edited image")

    # one slider, then a second one at the same time
    sleeves, unit = _slider(driver, "long sleeves")
    kwargs = {"unit": unit} if "unit" in edit_kwargs(model) else {}
    assert unit == edit_kwargs(model).get("unit", "raw")
    strength = _move(driver, sleeves, 0.8)
    assert strength > 0
    shown = _settled(driver, "dcvae-edited", unedited_src, server)
    expected = _api_image(model, model.edit(z, {"long_sleeves": strength}, **kwargs))
    assert np.abs(shown - expected).max() <= 1, "the page's edit differs from model.edit"
    assert np.abs(shown - recon).mean() > 2, "moving the slider did not visibly change the image"

    ink, _ = _slider(driver, "ink")
    before = _image_src(driver, "dcvae-edited")
    ink_strength = _move(driver, ink, 0.3)
    assert ink_strength < 0
    both = _settled(driver, "dcvae-edited", before, server)
    expected = _api_image(model, model.edit(z, {"long_sleeves": strength, "ink": ink_strength}, **kwargs))
    assert np.abs(both - expected).max() <= 1, "two sliders at once differ from model.edit with both"
    assert not driver.find_elements(By.CSS_SELECTOR, "#dcvae-status .dcvae-error")

    driver.execute_script("window.scrollTo(0, 0);")
    screenshot = SCREENSHOT if os.environ.get("DCVAE_UPDATE_FIGURES") == "1" else tmp_path / "app.png"
    assert driver.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000

    # downloads of the edit: the PNG is the image shown, the latents are model.edit's
    driver.find_element(By.ID, "dcvae-edit-download").click()
    files = _downloads(driver, "dcvae-edit-files", server)
    assert sorted(files) == ["edited.png", "edited_latents.safetensors"], sorted(files)
    assert np.abs(_pixels(Image.open(io.BytesIO(files["edited.png"]))) - both).max() <= 1
    saved = _latents(files["edited_latents.safetensors"])
    expected_z = model.edit(z, {"long_sleeves": strength, "ink": ink_strength}, output="latents", **kwargs)
    torch.testing.assert_close(saved["latents"], expected_z, atol=1e-5, rtol=0)
    torch.testing.assert_close(saved["original"], z, atol=1e-6, rtol=0)

    # reset: back to the reconstruction
    before = _image_src(driver, "dcvae-edited")
    driver.find_element(By.ID, "dcvae-reset").click()
    reset = _settled(driver, "dcvae-edited", before, server)
    assert np.abs(reset - recon).max() <= 1 and float(sleeves.get_attribute("value")) == 0.0

    # interpolation between two clicked examples: the frames are model.interpolate's
    driver.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Interpolate']").click()
    stems = [p.stem for p in example_images(model)]
    _pick_examples(driver, "dcvae-interp", ("tshirt", "dress"), stems)
    driver.find_element(By.ID, "dcvae-interpolate").click()
    path = model.interpolate(str(tshirt), str(EXAMPLES / "dress.png"), steps=8, method="slerp")
    first = _settled(driver, "dcvae-frame", None, server)
    assert np.abs(first - _api_image(model, path[:1])).max() <= 1
    before = _image_src(driver, "dcvae-frame")
    _move(driver, driver.find_element(By.CSS_SELECTOR, "#dcvae-position input[type=range]"), 0.999)
    last = _settled(driver, "dcvae-frame", before, server)
    assert np.abs(last - _api_image(model, path[-1:])).max() <= 1

    # mixing two clicked examples: the downloaded masks are those of `dcvae mix --seed 0`, the mixes model.mix's
    driver.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Mix']").click()
    _pick_examples(driver, "dcvae-mix", ("tshirt", "sneaker"), stems)
    driver.find_element(By.ID, "dcvae-mix").click()
    row = _settled(driver, "dcvae-mix-row", None, server)
    files = _downloads(driver, "dcvae-mix-files", server)
    assert sorted(files) == ["mix.png", "mix.safetensors"], sorted(files)
    assert np.array_equal(_pixels(Image.open(io.BytesIO(files["mix.png"]))), row)
    saved = _latents(files["mix.safetensors"])
    generator = torch.Generator().manual_seed(0)
    masks = torch.stack([random_mask(model.latent_dim, 0.5, generator) for _ in range(6)])
    assert torch.equal(saved["masks"].bool(), masks)
    za, zb = model.encode([str(tshirt)]), model.encode([str(EXAMPLES / "sneaker.png")])
    torch.testing.assert_close(saved["latents"], torch.where(masks, zb, za), atol=1e-6, rtol=0)
    assert int(masks.sum(1).min()) > 0 and int(masks.sum(1).max()) < model.latent_dim

    # prior samples
    driver.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Sample']").click()
    driver.find_element(By.ID, "dcvae-sample").click()
    shown_samples = _wait(lambda: [e.get_attribute("src") for e in driver.find_elements(By.CSS_SELECTOR,
                                                                                         "#dcvae-samples img")], 30,
                          "samples")
    assert len(shown_samples) == 16
    assert np.abs(_shown_image(server, shown_samples[0]) - _api_image(model, model.sample(1, seed=0))).max() <= 1
    driver.find_element(By.XPATH, "//button[@role='tab'][normalize-space()='Edit']").click()

    # a bad model name: a message on the page, no traceback, and the page keeps working
    box = driver.find_element(By.CSS_SELECTOR, "#dcvae-model input")
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("./no-such-model/", Keys.ENTER)
    message = _wait(lambda: [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, "#dcvae-status .dcvae-error")
                             if e.text.strip()], 30, "an error message")[0]
    assert message.startswith("Error: ") and "no-such-model" in message and "Traceback" not in message
    # the picker shows the model still in use, and the error stays (the image is not encoded again)
    _wait(lambda: box.get_attribute("value") == "fashion-mnist-32", 30, "the picker to show the loaded model")
    time.sleep(1.0)
    shown = [e.text.strip() for e in driver.find_elements(By.CSS_SELECTOR, "#dcvae-status .dcvae-error, "
                                                          "#dcvae-status .dcvae-note") if e.text.strip()]
    assert shown == [message], shown


def test_an_upload_pillow_cannot_open_gets_a_message_naming_the_file(server: dict[str, Any], model: Any,
                                                                    tmp_path: Path) -> None:
    """A HEIC photo or a renamed PDF: the page says what is wrong with the file (gradio's own preprocessing would
    fail first with a bare "Error"), naming it without the server's folders; a readable upload still works."""
    from gradio_client import Client, handle_file

    client = Client(server["url"], verbose=False, download_files=False)
    sliders = [0.0] * len(edit_directions(model))
    photo = tmp_path / "photo.heic"
    photo.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))
    *_, status = client.predict(handle_file(str(photo)), *sliders, api_name="/image")
    assert "Error: photo.heic: not an image file Pillow can read" in status, status
    assert "dcvae-app-" not in status and "gradio" not in status, status
    recon, _, status = client.predict(handle_file(str(EXAMPLES / "tshirt.png")), *sliders, api_name="/image")
    assert status == "" and recon


def test_sigterm_closes_the_server_as_ctrl_c_does(tmp_path: Path) -> None:
    """docker stop, systemd and Space restarts send SIGTERM: the temporary folder must go as on Ctrl-C."""
    serving = _serve(tmp_path)
    server = next(serving)
    assert _files_under(server["folders"]["tmp"]), "the app made no temporary folder"
    server["proc"].send_signal(signal.SIGTERM)
    try:
        status = server["proc"].wait(timeout=60)
    except subprocess.TimeoutExpired:
        log = server["log"].read_text()[-3000:]
        pytest.fail(f"dcvae app did not exit within 60 s of SIGTERM; its log ends:\n{log}")
    finally:
        serving.close()
    # gradio closes the server (0), or, signalled before it blocks, the CLI stops as on Ctrl-C (130); never the
    # plain commands' SIGTERM status 143, which would mean the server's own handler was shadowed
    assert status in (0, 130), server["log"].read_text()[-3000:]
    assert _files_under(server["folders"]["tmp"]) == [], "SIGTERM left the app's temporary folder behind"
    assert "Traceback" not in server["log"].read_text()


def test_server_writes_only_in_its_temporary_folder(server: dict[str, Any]) -> None:
    """Runs after the browser test (same server): the working folder and home stay empty; after Ctrl-C the
    temporary folder is empty again."""
    folders = server["folders"]
    assert _files_under(folders["cwd"]) == [] and _files_under(folders["home"]) == []
    # gradio writes a .pyi beside the module of any component subclass: the app must not make one
    assert not list((REPO / "dcvae_tools").rglob("*.pyi"))
    written = _files_under(folders["tmp"])
    assert written and all(p.startswith("dcvae-app-") for p in written), written
    proc = server["proc"]
    proc.send_signal(signal.SIGINT)
    try:  # gradio usually closes in a few seconds; the room is for slow, loaded CI machines
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        log = server["log"].read_text()[-3000:]
        pytest.fail(f"dcvae app did not exit within 60 s of Ctrl-C; its log ends:\n{log}")
    assert _files_under(folders["tmp"]) == [], "the app left files in its temporary folder"
    assert "Traceback" not in server["log"].read_text()

