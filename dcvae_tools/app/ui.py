"""The page: gradio components and how their events call :class:`~dcvae_tools.app.handlers.Editor`.

Every event goes through :func:`_guard`, which turns an error into a message in the status line on the page
(never a traceback: unexpected errors are logged on the server and shown as one line). Elements the browser
test drives carry ``elem_id``\\ s starting with ``dcvae-``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Callable
from typing import Any

import gradio as gr

from dcvae_tools.errors import DCVAEError, one_line

from .files import app_temp_root
from .handlers import MAX_MIXES, MAX_SAMPLES, MAX_STEPS, Editor, LoadedModel
from .sliders import MAX_SLIDERS, Direction

logger = logging.getLogger("dcvae_tools.app")

CSS = """
.dcvae-pixels img, .dcvae-pixels canvas { image-rendering: pixelated; }
#dcvae-input img, #dcvae-recon img, #dcvae-edited img, #dcvae-frame img, #dcvae-interp-a img, #dcvae-interp-b img,
#dcvae-mix-a img, #dcvae-mix-b img { width: 100%; height: 100%; object-fit: contain; }
#dcvae-status p { margin: 0; }
#dcvae-status .dcvae-error { color: #b00020; font-weight: 600; }
#dcvae-status .dcvae-note { color: #8a5a00; }
"""
"""Small images are enlarged with crisp pixels; errors stand out."""

TITLE = "DC-VAE latent editor"
IMAGE_HEIGHT = 220
CACHE_PRUNING = (3600, 86400)
"""gradio's ``delete_cache``: every hour, files the page served or received more than a day ago are deleted, so a
page that runs for weeks does not fill the disk (the app's own downloads are pruned alike, by ``TempFiles``)."""


def _without_server_folders(text: str) -> str:
    """``text`` with the server's temporary folders cut from every path in it (an upload named in a message shows
    as its file name; where the server keeps it is none of a visitor's business)."""
    for root in {str(app_temp_root()), os.environ.get("GRADIO_TEMP_DIR", "")} - {""}:
        text = re.sub(re.escape(root.rstrip(os.sep) + os.sep) + r"(?:[^\s:]*" + re.escape(os.sep) + ")?", "", text)
    return text


def _message(err: BaseException) -> str:
    """One line for the page: the library's messages as they are, anything else with its type; the server's
    temporary folders are cut from paths."""
    text = _without_server_folders(one_line(err))
    if isinstance(err, DCVAEError | ValueError):
        return text or type(err).__name__
    return f"internal error ({type(err).__name__}: {text}); the server log has the details"


def _error_html(err: BaseException) -> str:
    import html

    return f'<span class="dcvae-error">Error: {html.escape(_message(err))}</span>'


class Note(str):
    """A handler's last return value when the status line should show a note (not an error) instead of clearing."""


def _note_html(note: str) -> str:
    import html

    return f'<span class="dcvae-note">Note: {html.escape(" ".join(note.split()))}</span>'


def _guard(n_outputs: int, clear: bool = True, on_error: Callable[..., tuple[Any, ...]] | None = None
           ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a handler whose outputs are ``n_outputs`` components followed by the status line: on success the
    status is cleared (kept with ``clear=False``: for a step that follows another) or shows the :class:`Note` the
    handler returned last, on failure the status shows the error and the outputs are left as they were, or set to
    what ``on_error`` returns for the handler's arguments."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                result = fn(*args, **kwargs)
            except Exception as err:
                if not isinstance(err, DCVAEError | ValueError):
                    logger.exception("app handler %s failed", fn.__name__)
                outputs = on_error(*args, **kwargs) if on_error else tuple(gr.skip() for _ in range(n_outputs))
                return (*outputs, _error_html(err))
            result = result if isinstance(result, tuple) else (result,)
            if result and isinstance(result[-1], Note):
                return (*result[:-1], _note_html(result[-1]))
            return (*result, "" if clear else gr.skip())

        return run

    return wrap


def _slider_updates(directions: list[Direction]) -> list[Any]:
    """One update per slider slot: the model's directions, the other slots hidden."""
    updates = []
    for i in range(MAX_SLIDERS):
        if i < len(directions):
            d = directions[i]
            updates.append(gr.Slider(minimum=d.minimum, maximum=d.maximum, step=d.step, value=0.0, label=d.title,
                                     info=d.info, visible=True))
        else:
            updates.append(gr.Slider(value=0.0, visible=False))
    return updates


def _slider(index: int, direction: Direction | None) -> gr.Slider:
    """Slider slot ``index`` (the one place sliders are made; :func:`_slider_updates` refills them)."""
    d = direction
    return gr.Slider(minimum=d.minimum if d else -1.0, maximum=d.maximum if d else 1.0, step=d.step if d else 0.01,
                     value=0.0, label=d.title if d else f"direction {index}", info=d.info if d else None,
                     visible=d is not None, elem_id=f"dcvae-slider-{index}", buttons=[])


def _example_gallery(elem_id: str, lm: LoadedModel) -> gr.Gallery:
    return gr.Gallery(value=_example_items(lm), label="Examples (click one)", columns=8, height=120, format="png",
                      allow_preview=False, object_fit="contain", elem_id=elem_id, elem_classes=["dcvae-pixels"],
                      buttons=[])


def _example_items(lm: LoadedModel) -> list[tuple[Any, str]]:
    from dcvae_tools.images.files import load_image

    return [(load_image(p), p.stem) for p in lm.examples]


def _pick_example(lm: LoadedModel, index: Any) -> Any:
    from dcvae_tools.images.files import load_image

    if not isinstance(index, int) or not 0 <= index < len(lm.examples):
        raise DCVAEError("no such example")
    return load_image(lm.examples[index])


def _image_pair(prefix: str, lm: LoadedModel) -> tuple[gr.Image, gr.Gallery, gr.Image, gr.Gallery]:
    """Inputs A and B side by side, each with its example gallery (element ids ``{prefix}-a``, ...)."""
    with gr.Row():
        with gr.Column():
            a = _image("A", f"{prefix}-a", interactive=True)
            a_examples = _example_gallery(f"{prefix}-a-examples", lm)
        with gr.Column():
            b = _image("B", f"{prefix}-b", interactive=True)
            b_examples = _example_gallery(f"{prefix}-b-examples", lm)
    return a, a_examples, b, b_examples


def _accept_unreadable_uploads(image: gr.Image) -> gr.Image:
    """Let uploads reach the handlers even where Pillow cannot open them (HEIC, a renamed PDF), so the page says what
    is wrong with the file instead of gradio's bare "Error". gradio has checked the path (the upload's copy in its
    cache) before ``preprocess`` runs. The instance is patched, not subclassed: gradio writes a ``.pyi`` file beside
    the module of every component subclass."""
    preprocess = image.preprocess

    def lenient(payload: Any) -> Any:
        try:
            return preprocess(payload)
        except Exception:
            path = getattr(payload, "path", None)
            if not path:
                raise
            return str(path)  # the handler's image loader names what is wrong with it

    image.preprocess = lenient  # type: ignore[method-assign]
    return image


def _image(label: str, elem_id: str, *, interactive: bool) -> gr.Image:
    image = gr.Image(label=label, type="filepath" if interactive else "pil", format="png", image_mode=None,
                     height=IMAGE_HEIGHT, interactive=interactive, elem_id=elem_id, elem_classes=["dcvae-pixels"],
                     sources=["upload", "clipboard"] if interactive else None,
                     buttons=["download"] if not interactive else [])
    return _accept_unreadable_uploads(image) if interactive else image


def build_ui(editor: Editor) -> gr.Blocks:
    """The page for ``editor`` (its default model is loaded now, so a broken one fails before serving)."""
    first = editor.load(None)
    skip = gr.skip

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=CACHE_PRUNING) as demo:
        gr.Markdown(f"# {TITLE}\nEncode an image, move the sliders to edit it along the model's attribute "
                    "directions, interpolate, mix and sample. Everything runs on this server's CPU.")
        with gr.Row():
            model_box = gr.Dropdown(choices=editor.model_choices(), value=first.spec, allow_custom_value=True,
                                    label="Model: a released name, a Hub repo id (org/name) or a local folder",
                                    elem_id="dcvae-model", scale=3)
            load_button = gr.Button("Load model", elem_id="dcvae-load", scale=1)
        card = gr.Markdown(first.summary, elem_id="dcvae-card")
        status = gr.Markdown("", elem_id="dcvae-status")
        spec = gr.State(first.spec)
        latent = gr.State(None)
        loaded = gr.State(True)  # whether the last "Load model" worked: only then is the image encoded again

        with gr.Tabs():
            # ------------------------------------------------------------------ edit
            with gr.Tab("Edit", id="edit"), gr.Row():
                with gr.Column(scale=3):
                    with gr.Row():
                        source = _image("Your image (upload or drop)", "dcvae-input", interactive=True)
                        recon = _image("Reconstruction", "dcvae-recon", interactive=False)
                        edited = _image("Edited", "dcvae-edited", interactive=False)
                    edit_examples = _example_gallery("dcvae-examples", first)
                    with gr.Row():
                        reset = gr.Button("Reset sliders", elem_id="dcvae-reset")
                        edit_download = gr.Button("Prepare downloads (PNG + latents)",
                                                  elem_id="dcvae-edit-download")
                    edit_files = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                         elem_id="dcvae-edit-files")
                with gr.Column(scale=2, elem_id="dcvae-sliders"):
                    unit_line = gr.Markdown(_slider_note(first), elem_id="dcvae-unit")
                    sliders = [_slider(i, first.directions[i] if i < len(first.directions) else None)
                               for i in range(MAX_SLIDERS)]

            # ------------------------------------------------------------------ interpolate
            with gr.Tab("Interpolate", id="interpolate"):
                interp_a, interp_a_examples, interp_b, interp_b_examples = _image_pair("dcvae-interp", first)
                with gr.Row():
                    method = gr.Radio(["lerp", "slerp"], value="slerp", label="Method", elem_id="dcvae-method")
                    steps = gr.Slider(2, MAX_STEPS, value=8, step=1, label="Steps", elem_id="dcvae-steps")
                    interp_button = gr.Button("Interpolate", variant="primary", elem_id="dcvae-interpolate")
                frames = gr.State([])
                with gr.Row():
                    position = gr.Slider(0, 7, value=0, step=1, label="Position along the path (step)",
                                         elem_id="dcvae-position")
                    frame = _image("At this position", "dcvae-frame", interactive=False)
                interp_strip = _image("The path, A to B", "dcvae-strip", interactive=False)
                interp_files = gr.File(label="Downloads (strip PNG, animated GIF, latents)", file_count="multiple",
                                       interactive=False, elem_id="dcvae-interp-files")

            # ------------------------------------------------------------------ mix
            with gr.Tab("Mix", id="mix"):
                gr.Markdown("Each mix replaces a random share of A's latent dimensions with B's (the paper's "
                            "Figure 6); the same seed gives the same subsets as `dcvae mix --seed`.")
                mix_a, mix_a_examples, mix_b, mix_b_examples = _image_pair("dcvae-mix", first)
                with gr.Row():
                    fraction = gr.Slider(0, 1, value=0.5, step=0.05, label="Fraction of dimensions from B",
                                         elem_id="dcvae-fraction")
                    mix_seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="dcvae-mix-seed")
                    mix_count = gr.Slider(1, MAX_MIXES, value=6, step=1, label="Mixes", elem_id="dcvae-mix-count")
                    mix_button = gr.Button("Mix", variant="primary", elem_id="dcvae-mix")
                mix_row = _image("A, B, then the mixes", "dcvae-mix-row", interactive=False)
                mix_files = gr.File(label="Downloads (PNG, latents and masks)", file_count="multiple",
                                    interactive=False, elem_id="dcvae-mix-files")

            # ------------------------------------------------------------------ sample
            with gr.Tab("Sample", id="sample"):
                with gr.Row():
                    sample_seed = gr.Number(0, precision=0, minimum=0, label="Seed", elem_id="dcvae-sample-seed")
                    sample_count = gr.Slider(1, MAX_SAMPLES, value=16, step=1, label="How many",
                                             elem_id="dcvae-sample-count")
                    sample_button = gr.Button("Sample from the prior", variant="primary", elem_id="dcvae-sample")
                samples = gr.Gallery(label="Samples", columns=8, height="auto", object_fit="contain",
                                     elem_id="dcvae-samples", elem_classes=["dcvae-pixels"], format="png")
                sample_files = gr.File(label="Downloads (grid PNG, latents)", file_count="multiple",
                                       interactive=False, elem_id="dcvae-sample-files")

        galleries = [edit_examples, interp_a_examples, interp_b_examples, mix_a_examples, mix_b_examples]
        common = {"concurrency_id": "dcvae", "concurrency_limit": 1}

        # ---------------------------------------------------------------------- handlers

        def model_not_loaded(name: str, current: str) -> tuple[Any, ...]:
            # the picker goes back to the model still in use; the image is not encoded again (that step's note
            # would replace the error)
            return (gr.Dropdown(value=current), False, *(skip() for _ in range(4 + MAX_SLIDERS + len(galleries))))

        @_guard(6 + MAX_SLIDERS + len(galleries), on_error=model_not_loaded)
        def on_load_model(name: str, current: str) -> tuple[Any, ...]:
            lm = editor.load(name)
            items = _example_items(lm)
            return (skip(), True, lm.spec, lm.summary, None, _slider_note(lm), *_slider_updates(lm.directions),
                    *(items for _ in galleries))

        def show_image(name: str, image: str | None, *values: float) -> tuple[Any, ...]:
            if not image:
                return None, None, None
            z, reconstruction, note = editor.encode_view(name, image)
            result = editor.edit(name, z, values) if any(values) else reconstruction
            return (z, reconstruction, result, Note(note)) if note else (z, reconstruction, result)

        on_image = _guard(3)(show_image)
        show_image_after_load = _guard(3, clear=False)(show_image)

        def on_image_after_load(ok: bool, name: str, image: str | None, *values: float) -> tuple[Any, ...]:
            return show_image_after_load(name, image, *values) if ok else tuple(skip() for _ in range(4))

        @_guard(1)
        def on_slider(name: str, z: Any, *values: float) -> Any:
            return editor.edit(name, z, values)

        @_guard(1 + MAX_SLIDERS)
        def on_reset(name: str, z: Any) -> tuple[Any, ...]:
            image = editor.edit(name, z, []) if z is not None else skip()
            return (image, *(0.0 for _ in range(MAX_SLIDERS)))

        @_guard(1)
        def on_edit_download(name: str, z: Any, *values: float) -> Any:
            return editor.edit_downloads(name, z, values)

        @_guard(1)
        def on_example(name: str, evt: gr.SelectData) -> Any:
            return _pick_example(editor.load(name), evt.index)

        @_guard(5)
        def on_interpolate(name: str, a: str | None, b: str | None, n: int, how: str) -> tuple[Any, ...]:
            images, strip_png, gif, latents = editor.interpolate(name, a, b, n, how)
            from PIL import Image

            strip = Image.open(strip_png)
            return (images, images[0], gr.Slider(minimum=0, maximum=len(images) - 1, value=0, step=1), strip,
                    [gif, strip_png, latents])

        @_guard(1)
        def on_position(images: list[Any], index: float) -> Any:
            if not images:
                raise DCVAEError("interpolate first: pick A and B and press Interpolate")
            return images[max(0, min(round(index), len(images) - 1))]

        @_guard(2)
        def on_mix(name: str, a: str | None, b: str | None, share: float, seed: float | None, count: int
                   ) -> tuple[Any, ...]:
            row, _, png, latents = editor.mix(name, a, b, share, _whole(seed, "seed"), count)
            return row, [png, latents]

        @_guard(2)
        def on_sample(name: str, seed: float | None, count: int) -> tuple[Any, ...]:
            images, png, latents = editor.sample(name, _whole(seed, "seed"), count)
            return images, [png, latents]

        # ---------------------------------------------------------------------- wiring

        model_outputs = [model_box, loaded, spec, card, latent, unit_line, *sliders, *galleries, status]
        for trigger in (load_button.click, model_box.input):
            trigger(on_load_model, [model_box, spec], model_outputs, **common).then(
                on_image_after_load, [loaded, spec, source, *sliders], [latent, recon, edited, status], **common)
        source.change(on_image, [spec, source, *sliders], [latent, recon, edited, status], api_name="image", **common)
        for i, slider in enumerate(sliders):  # API names image and edit_0 ... are what benchmarks/app_latency.py calls
            slider.input(on_slider, [spec, latent, *sliders], [edited, status], trigger_mode="always_last",
                         show_progress="hidden", api_name=f"edit_{i}", **common)
        reset.click(on_reset, [spec, latent], [edited, *sliders, status], **common)
        edit_download.click(on_edit_download, [spec, latent, *sliders], [edit_files, status], **common)
        for gallery, target in zip(galleries, [source, interp_a, interp_b, mix_a, mix_b], strict=True):
            gallery.select(on_example, [spec], [target, status], **common)
        interp_button.click(on_interpolate, [spec, interp_a, interp_b, steps, method],
                            [frames, frame, position, interp_strip, interp_files, status], **common)
        position.input(on_position, [frames, position], [frame, status], trigger_mode="always_last",
                       show_progress="hidden", **common)
        mix_button.click(on_mix, [spec, mix_a, mix_b, fraction, mix_seed, mix_count], [mix_row, mix_files, status],
                         **common)
        sample_button.click(on_sample, [spec, sample_seed, sample_count], [samples, sample_files, status], **common)
    return demo


def _slider_note(lm: LoadedModel) -> str:
    """The line above the sliders: the strength unit, and how many directions the page leaves out."""
    hidden = len(lm.directions) - MAX_SLIDERS
    if hidden <= 0:
        return lm.unit_note
    rest = ", ".join(f"`{d.key}`" for d in lm.directions[MAX_SLIDERS:])
    return (f"{lm.unit_note} The page has {MAX_SLIDERS} sliders; this model's other {hidden} direction"
            f"{'s' if hidden > 1 else ''} ({rest}) work with `dcvae edit --attribute NAME`.")


def _whole(value: float | None, what: str) -> int:
    if value is None:
        raise DCVAEError(f"give a {what}: a whole number, 0 or more")
    if float(value) != int(value):
        raise DCVAEError(f"the {what} must be a whole number, got {value}")
    return int(value)
