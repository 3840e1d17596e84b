"""Commands that work in latent space: ``dcvae interpolate``, ``mix``, ``attribute`` and ``edit``."""

import contextlib
import difflib
import math
import shlex
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dcvae_tools.latent_specs import ATTRIBUTE_NAME

from ._app import _examples, app
from ._io import (
    Skipped,
    _check_decoded,
    _decode_stream,
    _encode_paths,
    _encoded_originals,
    _expand,
    _grid_upscale,
    _latent_chunks,
    _no_good_images,
    _OutputNames,
    _read_latents,
    _recorded_model,
    _refuse_output_in_model_folder,
    _refuse_overwriting_images,
    _refuse_overwriting_inputs,
    _report_skipped,
    _save_grid,
    _save_one,
    _skipped_records,
    _skipped_summary,
    _staged_dir,
    _staged_file,
)
from ._latent_refs import LatentsRef, count_rows, parse_latents_ref, read_latents_ref
from ._options import (
    BatchSizeOpt,
    CacheDirOpt,
    DebugOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    JsonOpt,
    LabelsOpt,
    ModelOpt,
    OfflineOpt,
    QuietOpt,
    RecursiveOpt,
    RevisionOpt,
    SeedOpt,
    SkipBadOpt,
    UpscaleOpt,
    _check_folder_output,
    _check_image_suffix,
    _check_safetensors_suffix,
    _count,
    _load,
    _model_name,
    _model_record,
    _need_output,
    _pick_seed,
    _usage,
)
from ._output import Output, one_line, session
from ._refine import RefineOpt, RefineSecondsOpt, check_refine_options, latent_batches, warn_if_cut

if TYPE_CHECKING:  # for annotations only: the commands import torch and the model lazily
    import torch

    from dcvae_tools.model import DCVAE, AttributeVector

# ---------------------------------------------------------------------------- interpolation ends

def _end_latents(ref: str) -> LatentsRef | None:
    """The latents an interpolation end names (None for an image), checked before the model loads: a row in
    range, or a whole file or folder that holds one latent."""
    from dcvae_tools.errors import LatentError

    given = parse_latents_ref(ref)
    if given is not None:
        total = count_rows(given)
        if given.row is None and total is not None and total > 1:
            raise LatentError(f"{given.path} holds {total} latents; pick one with {given.path}:ROW (0-{total - 1})")
    return given


def _end_image(ref: str) -> Path:
    """An interpolation end given as an image: the one image file ``ref`` names (checked before the model loads)."""
    from dcvae_tools.errors import LatentError

    paths = _expand([Path(ref)])
    if len(paths) != 1:
        raise LatentError(f"{ref} is a folder of {len(paths)} images; an interpolation end is one image")
    return paths[0]


def _endpoint(end: Path | LatentsRef, model: "DCVAE") -> "torch.Tensor":
    """An interpolation end as a latent [D]: the latents a :class:`LatentsRef` names (see :func:`_end_latents`), or
    the image encoded to its posterior mean."""
    from dcvae_tools.errors import LatentError

    if isinstance(end, LatentsRef):
        latents = read_latents_ref(end, model)
        if len(latents) != 1:
            raise LatentError(f"{end.path} holds {len(latents)} latents; pick one with {end.path}:ROW")
        return latents[0]
    return model.encode([end])[0].cpu()


# ---------------------------------------------------------------------------- attributes



def _parse_attribute_spec(spec: str) -> tuple[str, float | None]:
    """``KEY`` or ``KEY=STRENGTH`` -> (KEY, STRENGTH or None).

    A text after the last ``=`` that is no number, where that ``=`` lies in the path of an existing attributes file
    (``runs/lr=0.1/attrs.safetensors:ink``), is part of the key: a folder called ``lr=0.1``, not a strength.
    """
    key, sep, value = spec.rpartition("=")
    if not sep:
        return spec, None
    if not _is_number(value) and _equals_sign_in_a_file_path(spec):
        return spec, None
    try:
        strength = float(value)
    except ValueError:
        raise _usage(f"cannot read the strength {value!r} in {spec!r}; write NAME=1.5", "--attribute") from None
    if key and not math.isfinite(strength):
        raise _usage(f"the strength in {spec!r} must be a finite number, e.g. {key}=1.5", "--attribute")
    if not key:
        raise _usage(f"cannot read {spec!r}; write NAME, NAME=STRENGTH, FILE or FILE:NAME=STRENGTH", "--attribute")
    return key, strength


def _same_direction(a: "AttributeVector", b: "AttributeVector") -> bool:
    import torch

    return a is b or (a.name == b.name and torch.equal(a.direction, b.direction))


def _given_twice(edits: list[tuple["AttributeVector", float]]) -> tuple[int, int] | None:
    """The positions of the first direction given twice (`-a boot -a boot=2`), which would silently add up."""
    for j in range(len(edits)):
        for i in range(j):
            if _same_direction(edits[i][0], edits[j][0]):
                return i, j
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _equals_sign_in_a_file_path(spec: str) -> bool:
    """Whether ``spec`` is an existing file, or FILE:NAME of one, whose path holds the '='."""
    file = spec.rpartition(":")[0]
    return Path(spec).is_file() or ("=" in file and Path(file).is_file())


def _resolve_attribute(key: str, model: "DCVAE") -> "AttributeVector":
    """NAME (shipped with the model), FILE (an attributes .safetensors with one direction) or FILE:NAME."""
    from dcvae_tools.errors import LatentError
    from dcvae_tools.release import load_attributes

    # a shipped name wins over a stray file of that name, as released model names do for -m (./NAME for the file)
    if key in model.attributes and "/" not in key and "\\" not in key:
        return model.attributes[key]
    path, name = Path(key), None
    if not path.is_file():
        head, sep, tail = key.rpartition(":")
        if sep and head and Path(head).is_file():
            path, name = Path(head), tail
        elif key in model.attributes:
            return model.attributes[key]
        elif key.lower().endswith(".safetensors") or (sep and head.lower().endswith(".safetensors")):
            missing = head if sep and head.lower().endswith(".safetensors") else key
            raise LatentError(f"{missing}: no such attributes file; make one with `dcvae attribute`")
        else:
            shipped = ", ".join(sorted(model.attributes)) or "none"
            close = difflib.get_close_matches(key, list(model.attributes), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise LatentError(
                f"unknown attribute {key!r}: {hint}{_model_name(model)} ships {shipped}; or pass an attributes "
                "file made with `dcvae attribute` (FILE or FILE:NAME)"
            )
    vectors = load_attributes(path, model.latent_dim)
    if name is None:
        if len(vectors) != 1:
            listed = ", ".join(sorted(vectors)) or "none"
            raise LatentError(f"{path} holds {len(vectors)} attributes ({listed}); pick one with {path}:NAME")
        name = next(iter(vectors))
    if name not in vectors:
        raise LatentError(f"{path} has no attribute {name!r}; it holds {', '.join(sorted(vectors)) or 'none'}")
    _recorded_model(path, vectors[name].metadata, model, f"attribute {name!r}")
    return vectors[name]


def _latents_argument(images: Sequence[Path]) -> Path | None:
    """The latents file or sharded folder among ``edit``'s inputs (None for images); one, whole, given alone."""
    from dcvae_tools.errors import DCVAEError

    try:  # edit reads its inputs before its session starts: a bad name is a usage error
        found = [given for given in map(parse_latents_ref, images) if given is not None]
    except DCVAEError as err:
        raise _usage(str(err), "IMAGES") from None
    if not found:
        return None
    if len(images) != 1:
        raise _usage(f"{found[0].path} holds latents: give one latents file or folder alone, or only images",
                     "IMAGES")
    if found[0].row is not None:
        raise _usage(f"{found[0]}: edit takes every row of a latents file or folder; drop ':{found[0].row}'",
                     "IMAGES")
    return found[0].path


def _given_latent_batches(model: "DCVAE", chunks: Iterator["torch.Tensor"], paths: Sequence[Path], out: Output,
                          source: str) -> Iterator[tuple[list[Path], "torch.Tensor", None, "torch.Tensor"]]:
    """``edit``'s batches of given latents: (their sources, their decodings, no posterior means, the latents)."""
    for start, z, decoded in _decode_stream(model, chunks, len(paths), out, "editing", source):
        yield list(paths[start : start + len(z)]), decoded, None, z


MixInput = LatentsRef | list[Path]
"""One ``mix`` input as read before the model loads: the latents it names, or the image files it names."""


def _mix_inputs(refs: Sequence[Path], recursive: bool) -> list[MixInput]:
    """``mix``'s inputs for one side, each classified (and image folders expanded) once, before the model loads."""
    return [parse_latents_ref(ref) or _expand([ref], recursive) for ref in refs]


def _mix_rows(inputs: Sequence[MixInput]) -> int | None:
    """How many grid rows one side of ``mix`` gives, counted before the model loads (None if some latents file
    cannot be counted without reading it)."""
    counts = [len(given) if isinstance(given, list) else count_rows(given) for given in inputs]
    return None if None in counts else sum(c for c in counts if c is not None)


def _mix_side(model: "DCVAE", inputs: Sequence[MixInput], out: Output) -> tuple["torch.Tensor", "torch.Tensor"]:
    """One side of ``mix`` in the order given: (latents [N, D], what the grid shows for them [N, C, H, W]).
    Images (all of the side's at once) are encoded to their posterior means and shown as they are; given latents
    are used as they are and shown decoded."""
    import torch

    images = [path for given in inputs if isinstance(given, list) for path in given]
    if images:
        z_images, _, x_images, _ = _encode_paths(model, images, out, keep_images=True, can_skip=False)
        assert x_images is not None
    files: dict[Path, torch.Tensor] = {}

    def read_once(path: Path, model: "DCVAE") -> torch.Tensor:  # many rows of one file read it once
        if path not in files:
            files[path] = _read_latents(path, model)[0]
        return files[path]

    latents, shown, used = [], [], 0
    for given in inputs:
        if isinstance(given, list):
            latents.append(z_images[used : used + len(given)].float().cpu())
            shown.append(x_images[used : used + len(given)].float().cpu())
            used += len(given)
            continue
        z = read_latents_ref(given, model, read_once)
        decoded = model.decode(z).float().cpu()
        _check_decoded(decoded, z, str(given.path), given.row or 0)
        latents.append(z.cpu())
        shown.append(decoded)
    return torch.cat(latents), torch.cat(shown)


def _check_mix_rows(a_rows: int | None, b_rows: int | None) -> None:
    """Refuse sides that cannot pair: one side may have one row (used for every row of the other), else both
    need the same count (images and latent rows both count), as ``DCVAE.mix`` pairs them."""
    from dcvae_tools.errors import LatentError

    if a_rows is not None and b_rows is not None and 1 not in (a_rows, b_rows) and a_rows != b_rows:
        raise LatentError(
            f"A has {a_rows} rows and B has {b_rows} (each image or latent is one row); give one B for every A, "
            "one A for every B, or as many of each (paired in order)"
        )


def _far_message(model: "DCVAE", far: list[str], total: int, reason: str | None = None) -> str:
    """One line: which inputs are far outside the model's domain and, for the first, why (``reason``, from
    dcvae_tools.editing.domain.far_reason)."""
    stats = model.latent_stats
    assert stats is not None
    shown = ", ".join(far[:3]) + (f" and {len(far) - 3} more" if len(far) > 3 else "")
    level = 100 * float(stats.metadata.get("far_level", 0.995))
    why = f"{far[0]}: {reason}" if reason else (
        f"their encodings and reconstructions are more unusual than those of {level:g}% of its held-out test images")
    return (
        f"{_model_name(model)} knows {stats.domain}; {len(far)} of {total} inputs ({shown}) are far outside it "
        f"({why}): expect poor reconstructions and edits"
    )


# ---------------------------------------------------------------------------- commands


_END_HELP = ("Image file, LATENTS.safetensors:ROW or LATENTS_DIR:ROW (rows count from 0; one holding a single latent "
             "needs no :ROW).")


@app.command(
    epilog=_examples(
        "dcvae interpolate a.png b.png --steps 8 -o strip.png",
        "dcvae interpolate z.safetensors:0 z.safetensors:5 --slerp --gif morph.gif",
    )
)
def interpolate(
    a: Annotated[str, typer.Argument(
        metavar="A", help=_END_HELP)],
    b: Annotated[str, typer.Argument(
        metavar="B", help=_END_HELP)],
    steps: Annotated[
        int, typer.Option("--steps", metavar="N", min=2, max=1000, help="Images from A to B, both included.")
    ] = 8,
    slerp: Annotated[bool, typer.Option("--slerp", help="Spherical instead of linear interpolation.")] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="STRIP.png", help="One row of images from A to B."),
    ] = None,
    gif: Annotated[Path | None, typer.Option("--gif", metavar="ANIM.gif", help="An animation from A to B.")] = None,
    duration: Annotated[
        int,
        typer.Option(
            "--duration", metavar="MS", min=10, max=60_000, help="Milliseconds per GIF frame (at most a minute)."
        ),
    ] = 100,
    boomerang: Annotated[
        bool, typer.Option("--boomerang/--no-boomerang", help="Play the GIF forwards then backwards.")
    ] = True,
    upscale: UpscaleOpt = None,
    labels: LabelsOpt = True,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Interpolate between two images or latents.

    A and B are image files (encoded to their posterior means) or rows of a latents file
    (z.safetensors:ROW, or DIR:ROW of a sharded folder). Evenly spaced points from A to B are decoded,
    both ends included, linearly or along the sphere with --slerp: the first and last frames are A and B as
    the model reconstructs them, not the input images.
    """
    _need_output(output, gif, options=("-o STRIP.png", "--gif ANIM.gif"))
    _check_image_suffix(output, "--output")
    _check_image_suffix(gif, "--gif", gif=True)
    with session(quiet=quiet, debug=debug) as out:
        given = [_end_latents(ref) for ref in (a, b)]
        ends = [_end_image(ref) if latents is None else latents for ref, latents in zip((a, b), given, strict=True)]
        read = [end.path if isinstance(end, LatentsRef) else end for end in ends]
        _refuse_overwriting_inputs([path for path in (output, gif) if path is not None], read, "-o/--gif")
        import torch  # after the checks above, so their errors come at once

        from dcvae_tools import images as image_io

        loaded = _load(model, revision=revision, device=device, dtype=dtype, offline=offline, cache_dir=cache_dir)
        za, zb = (_endpoint(end, loaded) for end in ends)
        frames = loaded.interpolate(za, zb, steps=steps, method="slerp" if slerp else "lerp").cpu()
        _check_decoded(frames, torch.stack([za, zb]), f"{a} -> {b}", unit="step")
        scale = _grid_upscale(loaded, upscale)
        with contextlib.ExitStack() as stack:  # both files or neither
            if output is not None:
                from dcvae_tools.images.labels import interpolation_labels

                strip = stack.enter_context(_staged_file(output))
                _save_grid(loaded, frames, strip, steps, scale, interpolation_labels(steps) if labels else None)
            if gif is not None:
                image_io.save_gif(
                    frames,
                    stack.enter_context(_staged_file(gif)),
                    duration_ms=duration,
                    upscale=scale,
                    content_size=loaded.config.content_size,
                    boomerang=boomerang,
                )
        written = [str(p) for p in (output, gif) if p is not None]
        out.done(f"interpolated {steps} steps ({'slerp' if slerp else 'lerp'}): wrote {' and '.join(written)}")


@app.command(
    epilog=_examples(
        "dcvae mix a.png b.png --count 6 --seed 0 -o mix.png",
        "dcvae mix --a a1.png --a a2.png --a a3.png --b b.png --fraction 0.25 -o mix.png",
        "dcvae mix left/ right/ --dims 0-31 --dims 32-63 -o halves.png",
        "dcvae mix z.safetensors z.safetensors:0 --seed 0 -o mix.png",
    ),
    context_settings={"allow_extra_args": True},  # so a third argument gets the --a/--b advice below
)
def mix(
    ctx: typer.Context,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="GRID.png", help="The grid to write.")],
    a_source: Annotated[
        Path | None,
        typer.Argument(
            metavar="A",
            show_default=False,
            help="The image, folder or latents (LATENTS.safetensors or LATENTS_DIR, :ROW for one) to mix into.",
        ),
    ] = None,
    b_source: Annotated[
        Path | None,
        typer.Argument(
            metavar="B",
            show_default=False,
            help="The image, folder or latents (as for A) to take dimensions from.",
        ),
    ] = None,
    a_images: Annotated[
        list[Path] | None, typer.Option("--a", metavar="INPUT", help="An A image, folder or latents (repeatable).")
    ] = None,
    b_images: Annotated[
        list[Path] | None, typer.Option("--b", metavar="INPUT", help="A B image, folder or latents (repeatable).")
    ] = None,
    fraction: Annotated[
        float | None,
        typer.Option(
            "--fraction",
            metavar="F",
            min=0.0,
            max=1.0,
            show_default="0.5",
            help="Share of latent dimensions taken from B, chosen at random.",
        ),
    ] = None,
    dims: Annotated[
        list[str] | None,
        typer.Option(
            "--dims",
            metavar="RANGES",
            help="Take exactly these dimensions from B, e.g. 0-15,40 (repeatable: one mix per --dims).",
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(
            "--count",
            metavar="K",
            min=1,
            max=64,
            show_default="6",
            help="Mixes per row, each with another random subset.",
        ),
    ] = None,
    seed: SeedOpt = None,
    upscale: UpscaleOpt = None,
    labels: LabelsOpt = True,
    recursive: RecursiveOpt = False,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Mix latent dimensions of A and B (paper, Figure 6).

    Each mix replaces a subset of A's latent dimensions with B's: a random --fraction of them (--count
    different subsets), or exactly the --dims given. A and B give the same number of images or latents,
    paired in order, or one side gives one that pairs with each of the other's. The grid has one row per
    pair: A, B (the input images as given, so a mix can be compared with them), then the mixes; every row
    uses the same subsets.

    Images are encoded to their posterior means; latents from `dcvae encode` (a file or sharded folder, all
    rows or ROW) are mixed as they are and shown decoded.
    """
    _check_image_suffix(output, "--output")
    sources = [source for source in (a_source, b_source) if source is not None] + [Path(x) for x in ctx.args]
    if sources and (a_images or b_images):
        raise _usage("give A and B as two arguments or with --a/--b, not both", "--a")
    if sources:
        if len(sources) != 2:
            extra = f" ({', '.join(ctx.args)} beyond A and B)" if ctx.args else ""
            raise _usage(f"expected two arguments A and B, got {len(sources)}{extra}; use --a/--b for lists", "A B")
        a_images, b_images = [sources[0]], [sources[1]]
    if not a_images or not b_images:
        raise _usage("give A and B inputs (two arguments, or --a and --b)", "--a")
    if dims and (fraction is not None or count is not None):
        raise _usage("--dims fixes the subsets; drop --fraction/--count (repeat --dims for more mixes)", "--dims")
    with session(quiet=quiet, debug=debug) as out:
        from dcvae_tools.errors import LatentError
        from dcvae_tools.latent_specs import index_ranges, parse_index_ranges

        for spec in dims or []:
            try:  # the syntax now (not expanded); the range once the model says its latent size
                index_ranges(spec)
            except LatentError as err:
                raise _usage(str(err), "--dims") from None
        a_inputs, b_inputs = _mix_inputs(a_images, recursive), _mix_inputs(b_images, recursive)
        _check_mix_rows(_mix_rows(a_inputs), _mix_rows(b_inputs))
        inputs = (*a_inputs, *b_inputs)
        read = [path for given in inputs for path in ([given.path] if isinstance(given, LatentsRef) else given)]
        _refuse_overwriting_inputs([output], read, "-o")
        import torch  # after the checks above, so their errors come at once

        from dcvae_tools.latent import mask_from_indices, random_mask

        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        dim = loaded.latent_dim
        used_seed = None
        if dims:
            try:
                masks = torch.stack([mask_from_indices(dim, parse_index_ranges(spec, dim)) for spec in dims])
            except LatentError as err:
                raise LatentError(f"--dims: {err}") from None
        else:
            used_seed = _pick_seed(seed)
            generator = torch.Generator().manual_seed(used_seed)
            share = 0.5 if fraction is None else fraction
            if round(share * dim) == 0:
                raise LatentError(f"--fraction {share:g} takes none of {_model_name(loaded)}'s {dim} latent dimensions "
                                  f"(it rounds {share * dim:.3g} to 0), so every mix would be A; give at least "
                                  f"{1 / dim:.3g} (one dimension)")
            masks = torch.stack([random_mask(dim, share, generator) for _ in range(count or 6)])
        za, xa = _mix_side(loaded, a_inputs, out)
        zb, xb = _mix_side(loaded, b_inputs, out)
        _check_mix_rows(len(za), len(zb))
        mixed = loaded.mix(za, zb, mask=masks).cpu()  # row-major: every mask for row 0, then row 1, ...
        rows = max(len(za), len(zb))
        k = len(masks)
        cells = []
        for i in range(rows):
            cells += [xa[i if len(xa) > 1 else 0], xb[i if len(xb) > 1 else 0], *mixed[i * k : (i + 1) * k]]
        column_labels = ["A", "B", *(dims if dims else (f"mix {i + 1}" for i in range(k)))] if labels else None
        _save_grid(loaded, torch.stack(cells), output, k + 2, _grid_upscale(loaded, upscale), column_labels)
        if dims:
            how = f"the --dims subset{'s' if k > 1 else ''} {'; '.join(dims)}"  # in full: a heading may be cut
        else:
            chosen = int(masks[0].sum())
            how = f"{k} random subset{'s' if k > 1 else ''} of {chosen}/{dim} dimensions, seed {used_seed}"
        plural = "s" if rows > 1 else ""
        out.done(f"wrote {output}: {rows} row{plural} (A, B, {k} mix{'es' if k > 1 else ''}) with {how}")


@app.command(
    epilog=_examples(
        "dcvae attribute --positive long/ --negative short/ --name sleeves -o attrs.safetensors",
        "dcvae attribute -p sleeves/ -n sleeveless/ --name long_sleeves -o attrs.safetensors --append",
        "dcvae attribute -p long/ -n short/ --name sleeves --method boundary -o attrs.safetensors",
    )
)
def attribute(
    positive: Annotated[
        list[Path],
        typer.Option("--positive", "-p", metavar="IMAGES", help="Images or folders WITH the attribute (repeatable)."),
    ],
    negative: Annotated[
        list[Path],
        typer.Option(
            "--negative", "-n", metavar="IMAGES", help="Images or folders WITHOUT the attribute (repeatable)."
        ),
    ],
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="The attribute's name, e.g. sleeves.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", metavar="ATTRIBUTES.safetensors", help="Where to write the direction."),
    ],
    normalize: Annotated[bool, typer.Option("--normalize", help="Scale the direction to unit length.")] = False,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            metavar="mean|boundary",
            help="mean: the paper's mean difference; boundary: the unit normal of a logistic-regression boundary "
            "between the two sets (InterFaceGAN).",
        ),
    ] = "mean",
    append: Annotated[
        bool,
        typer.Option(
            "--append",
            help="Add to the attributes already in the file (without it, a file that holds others is refused).",
        ),
    ] = False,
    skip_bad: SkipBadOpt = False,
    recursive: RecursiveOpt = False,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Make an attribute direction from example images.

    The paper's recipe (--method mean): the mean latent of images with the attribute minus the mean latent
    of images without it (20 of each in the paper); --method boundary: the unit normal of a linear
    classifier between the two sets (InterFaceGAN). The direction is saved under --name in an attributes file
    that `dcvae edit --attribute FILE:NAME` uses; --append adds it to an existing file. With --skip-bad,
    unreadable files are left out, listed at the end and recorded in the attribute's metadata.
    """
    _check_safetensors_suffix(output, "--output")
    if method not in ("mean", "boundary"):
        raise _usage(f"unknown method {method!r}; use mean (the paper's) or boundary (InterFaceGAN's)", "--method")
    if method == "boundary" and normalize:
        raise _usage("a boundary's direction is already of unit length; drop --normalize", "--normalize")
    if not ATTRIBUTE_NAME.fullmatch(name):
        raise _usage(f"{name!r}: use letters, digits, '_', '-' and '.' (no ':' or '=')", "--name")
    with session(quiet=quiet, json_mode=json_, debug=debug) as out:
        from dcvae_tools.errors import DCVAEError
        from dcvae_tools.release import load_attributes, save_attributes

        pos_paths, neg_paths = _expand(positive, recursive), _expand(negative, recursive)
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        _refuse_output_in_model_folder(
            output, loaded, f"write the direction to a file of your own (-o my_attributes.safetensors) and use it "
            f"as `dcvae edit --attribute my_attributes.safetensors:{name}`")
        existing = {}
        if output.exists():
            try:
                existing = load_attributes(output, loaded.latent_dim)
            except DCVAEError as err:
                raise DCVAEError(
                    f"{output} exists and is not an attributes file of {_model_name(loaded)} "
                    f"({one_line(str(err))}); choose another -o, or delete the file"
                ) from None
            others = sorted(set(existing) - {name})
            if others and not append:
                raise _usage(
                    f"{output} already holds {', '.join(others)}; writing {name!r} alone would delete "
                    f"{'it' if len(others) == 1 else 'them'}: pass --append to add {name!r} to the file, or choose "
                    "another -o",
                    "-o",
                )
            if name in existing:
                out.warn(f"{output} already has {name!r}; replacing it")
        skipped: Skipped | None = [] if skip_bad else None
        z_pos, _, _, pos_paths = _encode_paths(loaded, pos_paths, out, skipped=skipped, what="positive images")
        z_neg, _, _, neg_paths = _encode_paths(loaded, neg_paths, out, skipped=skipped, what="negative images")
        metadata = {
            "model": _model_record(loaded),
            "weights_sha256": loaded.weights_sha256(),
            "positive": [str(p) for p in pos_paths],
            "negative": [str(p) for p in neg_paths],
            "latents": "posterior mean",
            **({"skipped": _skipped_records(skipped)} if skipped is not None else {}),
        }
        if method == "boundary":
            vector = loaded.boundary(z_pos, z_neg, name=name, metadata=metadata)
        else:
            vector = loaded.attribute_vector(z_pos, z_neg, name=name, normalize=normalize, metadata=metadata)
        vectors = {**existing, name: vector}
        save_attributes(vectors, output)  # atomically
        _report_skipped(out, skipped or [])
        norm = float(vector.direction.norm())
        out.data(
            {
                "output": str(output),
                "name": name,
                "num_positive": len(pos_paths),
                "num_negative": len(neg_paths),
                "normalized": vector.normalized,
                "method": method,
                "norm": norm,
                "attributes": sorted(vectors),
                **({"skipped": _skipped_records(skipped)} if skipped is not None else {}),
            }
        )
        out.done(
            f"wrote {output}: {name!r} ({'boundary normal' if method == 'boundary' else 'mean difference'}) from "
            f"{len(pos_paths)} positive / {len(neg_paths)} negative images "
            f"(norm {norm:.4g}); the file holds {', '.join(sorted(vectors))}{_skipped_summary(skipped)}"
        )


def _parse_sweep_option(sweep: str | None) -> list[float] | None:
    """``--sweep START:STOP:COUNT`` as strengths; a malformed one is a usage error naming the option."""
    if sweep is None:
        return None
    from dcvae_tools.errors import LatentError
    from dcvae_tools.latent_specs import parse_sweep

    try:
        return parse_sweep(sweep)
    except LatentError as err:
        raise _usage(str(err), "--sweep") from None


@app.command(
    epilog=_examples(
        "dcvae edit docs/examples/fashion-mnist/tshirt.png --attribute long_sleeves=1.5 -o edited/",
        "dcvae edit shirts/ --attribute attrs.safetensors:sleeves=2 -o edited/",
        "dcvae edit a.png b.png --attribute boot --sweep -2:2:5 -o strips/ --grid sweep.png",
        "dcvae edit docs/examples/fashion-mnist/coat.png -a long_sleeves=-1 --refine 50 -o edited/   # refined first",
        "dcvae edit docs/examples/fashion-mnist/tshirt.png -a long_sleeves=2 --hold ink -o edited/",
        "dcvae edit docs/examples/fashion-mnist/sneaker.png -a pc01 --sweep -3:3:7 --grid pc01.png",
    )
)
def edit(
    images: Annotated[
        list[Path],
        typer.Argument(
            metavar="IMAGES|LATENTS",
            help="Image files and/or folders (the images directly inside; -r for subfolders too), or one latents "
            "file or sharded folder written by `dcvae encode` (e.g. with --refine).",
        ),
    ],
    attributes: Annotated[
        list[str],
        typer.Option(
            "--attribute",
            "-a",
            metavar="NAME_OR_FILE[=STRENGTH]",
            help="An attribute the model ships (NAME), an attributes file (FILE or FILE:NAME); strength "
            "defaults to 1. Repeatable, each direction once: the edits add up.",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT_DIR",
            help="Folder for one edited image (or strip, with --sweep) per input.",
        ),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option("--grid", metavar="GRID.png", help="All inputs: one row each, the original first."),
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            metavar="START:STOP:COUNT",
            help="Strengths to show for the single attribute, e.g. -2:2:5.",
        ),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(
            "--unit",
            metavar="std|raw",
            show_default="std where the model ships latent statistics, else raw",
            help="Strength unit: std (1 = one standard deviation of the training latents along the direction) "
            "or raw (strength x direction, the paper's).",
        ),
    ] = None,
    hold: Annotated[
        list[str] | None,
        typer.Option(
            "--hold",
            metavar="NAME_OR_FILE",
            help="An attribute to keep unchanged: its direction is projected out of the edit (repeatable).",
        ),
    ] = None,
    upscale: UpscaleOpt = None,
    labels: LabelsOpt = True,
    refine: RefineOpt = 0,
    refine_seconds: RefineSecondsOpt = None,
    skip_bad: SkipBadOpt = False,
    recursive: RecursiveOpt = False,
    model: ModelOpt = None,
    revision: RevisionOpt = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = Dtype.float32,
    batch_size: BatchSizeOpt = None,
    offline: OfflineOpt = False,
    cache_dir: CacheDirOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Edit images along attribute directions.

    Each image is encoded, strength x direction is added for every --attribute, and the result is
    decoded. With --sweep, each input gives a strip: the original, then the single attribute applied
    at each strength (the paper's Figure 7). Strengths are in standard deviations of the training
    latents along each direction where the model ships latent statistics (--unit raw: the paper's
    strength x direction). --hold keeps other attributes fixed. Inputs far outside what the model
    knows get a warning. --refine N optimises each latent for N steps first, so the edit starts
    from a closer reconstruction. With --skip-bad, unreadable files are left out and listed at the end.

    Given a latents file or sharded folder instead (`dcvae encode ... -o z.safetensors`, with --refine
    for closer starts), its latents are edited as they are: outputs are named after the files they
    were encoded from, and a strip's first image is the latent's decoding. Latents get no domain
    check (it judges images by their posterior means; refined latents are not those).
    """
    _need_output(output, grid, options=("-o OUT_DIR", "--grid GRID.png"))
    _check_folder_output(output)
    check_refine_options(refine, refine_seconds)
    latents_input = _latents_argument(images)
    if latents_input is not None:
        for given, option in ((refine, "--refine"), (skip_bad, "--skip-bad"), (recursive, "--recursive")):
            if given:
                raise _usage(f"{latents_input} holds latents already: {option} is for images (drop it)", option)
    _check_image_suffix(grid, "--grid")
    specs = [_parse_attribute_spec(spec) for spec in attributes]
    if unit is not None and unit not in ("std", "raw"):
        raise _usage(f"unknown unit {unit!r}; use std (standard deviations) or raw (the paper's)", "--unit")
    for spec in hold or []:  # a text after '=' that is no number is left to the file lookup, which names what is wrong
        if (parts := spec.rpartition("="))[1] and _is_number(parts[2]):
            raise _usage(f"--hold {spec}: a held attribute takes no strength; drop '=...'", "--hold")
    if sweep is not None:
        if len(specs) != 1:
            raise _usage("--sweep takes exactly one --attribute", "--sweep")
        if specs[0][1] is not None:
            raise _usage("--sweep sets the strengths; drop =STRENGTH from --attribute", "--sweep")
    strengths = _parse_sweep_option(sweep)
    with session(quiet=quiet, debug=debug) as out:
        paths = _expand(images, recursive) if latents_input is None else []
        import torch  # after the checks above, so their errors come at once

        from dcvae_tools.editing.api import far_edits
        from dcvae_tools.editing.domain import far_reason
        from dcvae_tools.editing.units import FarEditWarning
        from dcvae_tools.errors import DCVAEError, LatentError
        from dcvae_tools.images.labels import edit_heading, strength_labels
        from dcvae_tools.latent import nonfinite_rows

        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        protected = paths  # the inputs no output may replace
        if latents_input is not None:
            total, sources, working_dir, chunks = _latent_chunks(latents_input, loaded)
            named = sources is not None and len(sources) == total
            paths = [Path(source) for source in sources] if named else [Path(f"{i:05d}") for i in range(total)]
            protected = [*_encoded_originals(sources, working_dir), latents_input]
        edits = [(_resolve_attribute(key, loaded), 1.0 if s is None else s) for key, s in specs]
        if twice := _given_twice(edits):
            first, (key, other) = edits[twice[0]][0], (specs[i][0] for i in twice)
            combined = sum(s for v, s in edits if _same_direction(v, first))
            what = f"{key} is given more than once" if key == other else f"{key} and {other} are the same direction"
            fix = (
                f"give it once with the total strength (--attribute {shlex.quote(f'{key}={combined:g}')})"
                if combined
                else "their strengths cancel: drop them"
            )
            raise _usage(f"{what}, so the edits would add up; {fix}", "--attribute")
        held = [_resolve_attribute(key, loaded) for key in hold or []]
        if clash := sorted({v.name for v, _ in edits for h in held if _same_direction(v, h)}):
            raise _usage(f"{', '.join(clash)} is both edited and held; hold other attributes", "--hold")
        # the documented default, without the Python API's warning: the last line names the unit used
        used_unit = unit or ("std" if loaded.latent_stats is not None else "raw")
        # each far-edit warning said once here, not once per strength and batch by model.edit below
        planned = edits if strengths is None else [(edits[0][0], s) for s in strengths]
        for message in far_edits(loaded, planned, used_unit, held):
            out.warn(message)
        far: list[str] = []
        reason: str | None = None
        names = _OutputNames(paths)
        _refuse_overwriting_images(protected, output, names.names, grid)
        first = "original" if latents_input is None else "decoded"
        edited = edit_heading([(v.name, s) for v, s in edits], beside=first)
        headings = [first, *(strength_labels(strengths) if strengths is not None else [edited])]
        columns, column_labels = len(headings), headings if labels else None
        skipped: Skipped | None = [] if skip_bad else None
        rows: list[torch.Tensor] = []
        done = 0
        with contextlib.ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore", FarEditWarning)
            grid_file = stack.enter_context(_staged_file(grid)) if grid is not None else None
            stage = stack.enter_context(_staged_dir(output, protected)) if output is not None else None
            refined: list = []
            if latents_input is None:
                batches = latent_batches(loaded, paths, out, "editing", skipped, refine, refine_seconds, refined)
            else:
                batches = _given_latent_batches(loaded, chunks, paths, out, str(latents_input))
            for chunk, x, mu, z in batches:
                report = loaded.check_domain(x, mu, warn=False) if mu is not None else None
                if report is not None:
                    flagged = report.far.nonzero().flatten().tolist()
                    if flagged and reason is None:
                        reason = far_reason(loaded.latent_stats, report, flagged[0])
                    far += [str(chunk[i]) for i in flagged]
                try:
                    if strengths is None:
                        variants = [loaded.edit(z, edits, unit=used_unit, hold=held).cpu()]
                    else:
                        vector = edits[0][0]
                        variants = [loaded.edit(z, [(vector, s)], unit=used_unit, hold=held).cpu() for s in strengths]
                except LatentError as err:  # the strengths overflowed: name the image, as for NaN pixels below
                    raise DCVAEError(f"{chunk[getattr(err, 'rows', [0])[0]]}: {err}; use lower strengths") from None
                for variant in variants:
                    if broken := nonfinite_rows(variant):
                        message = "the edit gives NaN or infinite pixels; use lower strengths"
                        raise DCVAEError(f"{chunk[broken[0]]}: {message}")
                for i, path in enumerate(chunk):
                    row = torch.stack([x[i].cpu(), *(v[i] for v in variants)])
                    if stage is not None:
                        target = stage / names.take(path)
                        if strengths is None:
                            _save_one(loaded, row[1], target, upscale or 1)
                        else:
                            _save_grid(loaded, row, target, columns, _grid_upscale(loaded, upscale), column_labels)
                    if grid is not None:
                        rows.append(row)
                    done += 1
            if not done:
                _no_good_images(out, skipped or [], skipped or [])
            if grid_file is not None:
                _save_grid(loaded, torch.cat(rows), grid_file, columns, _grid_upscale(loaded, upscale), column_labels)
        _report_skipped(out, skipped or [])
        if refined:
            warn_if_cut(out, refined[0], refine)
        if far:
            out.warn(_far_message(loaded, far, done, reason))
        what = (
            ", ".join(f"{v.name}={s:g}" for v, s in edits)
            if strengths is None
            else (f"{edits[0][0].name} at {', '.join(f'{s:g}' for s in strengths)}")
        ) + f" {used_unit}" + (f", holding {', '.join(h.name for h in held)}" if held else "")
        if strengths is not None and not labels:  # the bare grid and strips: say how to read their columns
            what += f"; columns: the {first} image, then those strengths left to right"
        written = [f"{_count(done, 'strip' if strengths else 'image')} in {output}/"] if output is not None else []
        written += [str(grid)] if grid is not None else []
        out.done(f"edited {_count(done, 'image')} ({what}): wrote {' and '.join(written)}{_skipped_summary(skipped)}")
