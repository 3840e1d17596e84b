"""What the page does, as plain functions over the public Python API (no gradio here).

:class:`Editor` holds the loaded models (a few, by the name the user picked) and turns each page action into
calls of :class:`dcvae_tools.DCVAE`: ``encode``, ``decode``, ``edit``, ``interpolate``, ``mix`` and
``sample``. Expected failures (a bad image, an unknown model, no image given yet) raise :class:`AppError` or
one of the library's :class:`~dcvae_tools.errors.DCVAEError`\\ s, whose message the page shows as it is.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcvae_tools.errors import DCVAEError

from .files import TempFiles, app_temp_root
from .sliders import Direction, edit_directions, edit_kwargs, edit_unit, unit_note

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from dcvae_tools.model import DCVAE

logger = logging.getLogger("dcvae_tools.app")

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "docs" / "examples"
"""Example images, one folder per data set (``docs/examples/fashion-mnist`` ...), in a source checkout."""

MAX_MODELS = 3
"""How many models stay loaded at once (least recently used ones are dropped)."""
MAX_SAMPLES = 64
MAX_STEPS = 32
MAX_MIXES = 8
DISPLAY_UPSCALE = 4
"""Grids, strips and GIFs for download are enlarged this many times (nearest neighbour): 28x28 is tiny."""


class AppError(DCVAEError):
    """A page action that cannot be done, with the message to show."""


@dataclass
class LoadedModel:
    """A model ready for the page: the model, its sliders, examples and card summary, and a lock (handlers
    run on several threads; one model computes one request at a time)."""

    spec: str
    model: DCVAE
    directions: list[Direction]
    examples: list[Path]
    summary: str
    unit: str = "raw"
    edit_kwargs: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def unit_note(self) -> str:
        """What a slider strength of 1.0 means for this model."""
        return unit_note(self.unit)

    @property
    def name(self) -> str:
        source = getattr(self.model, "source", None)
        return str(source.name) if source is not None else self.spec


def _spelled_as_a_release_or_hub_repo(spec: str) -> bool:
    """Whether ``spec`` is written as a released model name or a Hub repo id (``org/name``): what a page that does
    not load files or folders by path accepts from visitors. Only the spelling is judged; the file system is never
    asked (whether a path exists is none of a visitor's business), and such names load with ``allow_local=False``."""
    from dcvae_tools.manifest import REPO_ID, load_manifest

    # REPO_ID itself rules out every path spelling: a leading /, ., ~, a trailing /, a backslash, a second /
    return load_manifest().get(spec) is not None or bool(REPO_ID.match(spec))


def example_images(model: DCVAE) -> list[Path]:
    """The example images for ``model``'s data set: ``docs/examples/<dataset>/`` (or the folder whose name the
    data set starts with, e.g. ``mnist`` for ``mnist5k``); empty when the checkout has none."""
    from dcvae_tools.images.files import find_images

    if not EXAMPLES_DIR.is_dir():
        return []
    dataset = (model.config.dataset or "").lower()
    folders = sorted((p for p in EXAMPLES_DIR.iterdir() if p.is_dir()), key=lambda p: -len(p.name))
    for folder in folders:
        if dataset and (dataset == folder.name or dataset.startswith(folder.name)):
            return find_images(folder)
    return []


def _card_text(folder: Path) -> str:
    """The model card's first paragraph after its title (YAML front matter skipped), or ''."""
    card = folder / "README.md"
    try:
        text = card.read_text(encoding="utf-8", errors="replace")[:20000]
    except OSError:
        return ""
    text = re.sub(r"\A---\n.*?\n---\n", "", text, flags=re.S)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    for paragraph in paragraphs:
        if not paragraph.startswith(("#", "|", "```", "<", "!")):
            return " ".join(paragraph.split())[:400]
    return ""


def _provenance(lm: Any) -> dict[str, str]:
    """What a downloaded latents file records about its model: the name, and (for a DC-VAE) the weights' hash by
    which ``dcvae decode`` tells latents of other weights apart."""
    digest = getattr(lm.model, "weights_sha256", None)
    return {"model": lm.name, **({"weights_sha256": digest()} if callable(digest) else {})}


def card_summary(model: DCVAE) -> str:
    """A few lines of Markdown about ``model``: where it came from, its data, sizes, attributes and metrics."""
    config = model.config
    source = getattr(model, "source", None)
    name = source.name if source is not None else "model"
    where = source.source if source is not None else "in memory"
    if source is not None and source.revision:
        where += f" @ {source.revision[:10]}"
    colour = "grey" if config.channels == 1 else "RGB"
    lines = [f"**{name}** ({where}): {config.architecture}, {config.image_size}x{config.image_size} {colour}, "
             f"latent {config.latent_dim}" + (f", trained on {config.dataset}" if config.dataset else "")]
    text = _card_text(Path(source.folder)) if source is not None else ""
    if text or config.description:
        lines.append(text or str(config.description))
    attributes = ", ".join(f"`{a}`" for a in sorted(model.attributes)) or "none shipped"
    lines.append(f"Attributes: {attributes}.")
    metrics = {k: v for k, v in (config.metrics or {}).items() if isinstance(v, int | float)}
    if metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in list(metrics.items())[:6])
        lines.append(f"Metrics: {shown}.")
    return "\n\n".join(lines)


def _check_image(image: Any, what: str) -> None:
    if image is None or (isinstance(image, str) and not image):
        raise AppError(f"no {what}: upload an image, drop one on the box, or pick an example")


class Editor:
    """The page's state that is shared by every visitor: loaded models and the temporary files.

    Args:
        default_model: the model shown first (``None``: the package's default model).
        offline: never touch the network (``HF_HUB_OFFLINE`` also counts).
        allow_local_folders: whether visitors may load a file or folder of the server by its path (off for a
            public page: then only released names and Hub repo ids load, visitors' repos without the server's
            Hub token).
        device: where models run (default CPU).
    """

    def __init__(self, default_model: str | None = None, *, offline: bool = False, allow_local_folders: bool = True,
                 device: str | None = None, files: TempFiles | None = None) -> None:
        from dcvae_tools.hub import default_model_name

        self.default_model = default_model or default_model_name()
        self.offline = offline
        self.allow_local_folders = allow_local_folders
        self.device = device or "cpu"
        self.files = files or TempFiles()
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ models

    def model_choices(self) -> list[str]:
        """Released model names, then Hub repos in the local cache that look like DC-VAE checkpoints."""
        from dcvae_tools.manifest import load_manifest

        names = list(load_manifest().models)
        if not self.allow_local_folders:  # visitors load Hub repos into a cache of their own, not the server's
            return list(dict.fromkeys([self.default_model, *names]))
        try:
            from huggingface_hub import scan_cache_dir

            for repo in scan_cache_dir().repos:
                files = {f.file_name for rev in repo.revisions for f in rev.files}
                if repo.repo_type == "model" and {"config.json", "model.safetensors"} <= files:
                    names.append(repo.repo_id)
        except Exception as err:  # no cache yet, unreadable cache: only the released names
            logger.debug("no Hugging Face cache to list: %s", err)
        return list(dict.fromkeys([self.default_model, *names]))

    def load(self, spec: str | None) -> LoadedModel:
        """The model ``spec`` names (a released name, a Hub repo id, or a folder), loaded once and kept."""
        spec = (spec or "").strip() or self.default_model
        with self._lock:
            if spec in self._models:
                self._models.move_to_end(spec)
                return self._models[spec]
        # the first model is the owner's choice (`dcvae app -m ./my-run --host 0.0.0.0`); visitors pick the others
        visitor = not self.allow_local_folders and spec != self.default_model
        if visitor and not _spelled_as_a_release_or_hub_repo(spec):
            raise AppError("this server does not load files or folders by path; pick a released model or a Hub repo "
                           "id (org/name)")
        from dcvae_tools.hub import hub_offline_mode
        from dcvae_tools.loading import load_model

        # a visitor's name never reaches the server's files, its Hub token (HF_TOKEN may read private repos) or its
        # Hub cache (a private repo the owner downloaded would be served from it, token or not)
        options = {"allow_local": False, "token": False, "cache_dir": app_temp_root() / "hub"} if visitor else {}
        with hub_offline_mode(self.offline):
            model = load_model(spec, device=self.device, local_files_only=self.offline, **options)
        loaded = LoadedModel(spec, model, edit_directions(model), example_images(model), card_summary(model),
                             edit_unit(model), edit_kwargs(model))
        with self._lock:
            self._models[spec] = loaded
            while len(self._models) > MAX_MODELS:
                self._models.popitem(last=False)
        return loaded

    # ------------------------------------------------------------------ one image

    def encode(self, spec: str, image: Any) -> torch.Tensor:
        """The latent [1, D] of one image (a path, PIL image or array), the posterior mean."""
        _check_image(image, "image")
        lm = self.load(spec)
        with lm.lock:
            return lm.model.encode([image]).cpu()

    def encode_view(self, spec: str, image: Any) -> tuple[torch.Tensor, Image.Image, str | None]:
        """One image's latent [1, D], its reconstruction, and a note when the image is far outside what the model
        knows (the model's own out-of-domain check, where it has one; None otherwise)."""
        import warnings

        _check_image(image, "image")
        lm = self.load(spec)
        with lm.lock:
            x = lm.model.images_to_tensor([image])
            z = lm.model.encode(x)
            recon = lm.model.decode(z)
            note = None
            check = getattr(lm.model, "check_domain", None)
            if check is not None:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    check(x, z, recon)
                notes = [str(w.message) for w in caught if "domain" in type(w.message).__name__.lower()]
                note = " ".join(notes[0].split()) if notes else None
            return z.cpu(), lm.model.to_pil(recon)[0], note

    def decode_pil(self, spec: str, latents: torch.Tensor) -> list[Image.Image]:
        """Decode latents [N, D] to PIL images (training padding cropped)."""
        lm = self.load(spec)
        with lm.lock:
            return lm.model.to_pil(lm.model.decode(latents))

    def strengths(self, spec: str, values: Sequence[float | None]) -> dict[str, float]:
        """Slider values (in slot order) -> ``{direction key: strength}``, zeros left out."""
        directions = self.load(spec).directions
        return {d.key: float(v) for d, v in zip(directions, values, strict=False) if v}

    def edit(self, spec: str, z: torch.Tensor | None, values: Sequence[float | None]) -> Image.Image:
        """The image of latent ``z`` edited with the sliders' strengths: ``model.edit(z, {name: strength})`` (with
        ``unit=`` the sliders' unit where ``edit`` takes one)."""
        if z is None:
            raise AppError("no image yet: upload one or pick an example first")
        lm = self.load(spec)
        edits = self.strengths(spec, values)
        with lm.lock:
            images = lm.model.edit(z, edits, **lm.edit_kwargs) if edits else lm.model.decode(z)
            return lm.model.to_pil(images)[0]

    def edit_downloads(self, spec: str, z: torch.Tensor | None, values: Sequence[float | None]) -> list[str]:
        """The edited image as PNG and the latents (original and edited) as safetensors."""
        if z is None:
            raise AppError("nothing to download yet: upload an image or pick an example first")
        lm = self.load(spec)
        edits = self.strengths(spec, values)
        with lm.lock:
            edited = lm.model.edit(z, edits, output="latents", **lm.edit_kwargs) if edits else z.clone()
            image = lm.model.to_pil(lm.model.decode(edited))[0]
        png = self.files.png(image, "edited.png")
        latents = self.files.latents({"latents": edited, "original": z}, "edited_latents.safetensors",
                                     {**_provenance(lm), "edits": edits, "unit": lm.unit})
        return [str(png), str(latents)]

    # ------------------------------------------------------------------ two images, samples

    def interpolate(self, spec: str, a: Any, b: Any, steps: int, method: str
                    ) -> tuple[list[Image.Image], str, str, str]:
        """A lerp/slerp path from A to B: its frames, and files (strip PNG, GIF, latents)."""
        _check_image(a, "image A")
        _check_image(b, "image B")
        steps = int(steps)
        if not 2 <= steps <= MAX_STEPS:
            raise AppError(f"steps must be between 2 and {MAX_STEPS}, got {steps}")
        if method not in ("lerp", "slerp"):
            raise AppError(f"method must be lerp or slerp, got {method!r}")
        lm = self.load(spec)
        with lm.lock:
            za, zb = lm.model.encode([a]), lm.model.encode([b])
            path = lm.model.interpolate(za, zb, steps=steps, method=method, output="latents")
            decoded = lm.model.decode(path)
            frames = lm.model.to_pil(decoded)
        strip = self._grid(lm, decoded, nrow=steps)
        files = (str(self.files.png(strip, f"interpolation_{method}.png")),
                 str(self.files.gif(frames, f"interpolation_{method}.gif")),
                 str(self.files.latents({"latents": path}, f"interpolation_{method}.safetensors",
                                        {**_provenance(lm), "method": method, "steps": steps})))
        return frames, *files

    def mix(self, spec: str, a: Any, b: Any, fraction: float, seed: int, count: int
            ) -> tuple[Image.Image, list[Image.Image], str, str]:
        """``count`` mixes of A and B (each replaces a random ``fraction`` of A's dimensions with B's, the masks
        drawn from ``seed`` as ``dcvae mix --count --seed`` draws them): the row A, B, mixes; the mixes; files."""
        import torch

        from dcvae_tools.latent import random_mask

        _check_image(a, "image A")
        _check_image(b, "image B")
        count, seed = _count_and_seed(count, seed, MAX_MIXES)
        lm = self.load(spec)
        with lm.lock:
            za, zb = lm.model.encode([a]), lm.model.encode([b])
            generator = torch.Generator().manual_seed(seed)
            masks = torch.stack([random_mask(lm.model.latent_dim, float(fraction), generator) for _ in range(count)])
            mixed = lm.model.mix(za, zb, mask=masks, output="latents")
            decoded = lm.model.decode(torch.cat([za, zb, mixed]))
            images = lm.model.to_pil(decoded)
        row = self._grid(lm, decoded, nrow=len(decoded))
        png = self.files.png(row, "mix.png")
        latents = self.files.latents({"latents": mixed, "masks": masks.to(torch.uint8)}, "mix.safetensors",
                                     {**_provenance(lm), "fraction": float(fraction), "seed": seed})
        return row, images[2:], str(png), str(latents)

    def sample(self, spec: str, seed: int, count: int) -> tuple[list[Image.Image], str, str]:
        """``count`` prior samples for ``seed`` (``model.sample``): the images, a grid PNG and the latents."""
        from dcvae_tools.images.save import square_nrow

        count, seed = _count_and_seed(count, seed, MAX_SAMPLES)
        lm = self.load(spec)
        with lm.lock:
            z = lm.model.random_latents(count, seed=seed)
            decoded = lm.model.decode(z)
            images = lm.model.to_pil(decoded)
        grid = self._grid(lm, decoded, nrow=square_nrow(count))
        png = self.files.png(grid, "samples.png")
        prior = lm.model.resolve_prior()  # what random_latents drew from
        latents = self.files.latents({"latents": z}, "samples.safetensors",
                                     {**_provenance(lm), "seed": seed, "prior": prior})
        return images, str(png), str(latents)

    @staticmethod
    def _grid(lm: LoadedModel, images: torch.Tensor, nrow: int) -> Image.Image:
        from PIL import Image as PILImage

        from dcvae_tools.images.convert import crop_center, to_pil
        from dcvae_tools.images.save import make_grid

        grid = to_pil(make_grid(crop_center(images.cpu(), lm.model.config.content_size), nrow=nrow))
        assert isinstance(grid, PILImage.Image)
        return grid.resize((grid.width * DISPLAY_UPSCALE, grid.height * DISPLAY_UPSCALE), PILImage.Resampling.NEAREST)


def _count_and_seed(count: float, seed: float, most: int) -> tuple[int, int]:
    """The page's count and seed as integers, or an :class:`AppError` naming the bad one."""
    count, seed = int(count), int(seed)
    if not 1 <= count <= most:
        raise AppError(f"count must be between 1 and {most}, got {count}")
    if not 0 <= seed < 2**64:
        raise AppError(f"seed must be between 0 and 2**64 - 1, got {seed}")
    return count, seed
