"""Commands between images and latents: ``dcvae encode``, ``decode``, ``reconstruct`` and ``sample``."""

import contextlib
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dcvae_tools.latent_specs import FLOAT32_MAX

from ._app import _examples, app
from ._io import (
    Skipped,
    _decode_batches,
    _decode_stream,
    _encode_paths,
    _encoded_originals,
    _expand,
    _grid_upscale,
    _is_latents,
    _latent_chunks,
    _no_good_images,
    _output_names,
    _OutputNames,
    _read_latents_missing,
    _refuse_output_in_model_folder,
    _refuse_overwriting_images,
    _report_skipped,
    _save_grid,
    _save_one,
    _skipped_records,
    _skipped_summary,
    _staged_dir,
    _staged_file,
    _write_safetensors,
)
from ._options import (
    BatchSizeOpt,
    CacheDirOpt,
    DebugOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    ImagesArg,
    JsonOpt,
    ModelOpt,
    NrowOpt,
    OfflineOpt,
    Prior,
    QuietOpt,
    RecursiveOpt,
    RevisionOpt,
    SeedOpt,
    SkipBadOpt,
    UpscaleOpt,
    _check_folder_output,
    _check_image_suffix,
    _count,
    _load,
    _model_name,
    _model_record,
    _need_output,
    _pick_seed,
    _usage,
)
from ._output import Output, session
from ._refine import (
    RefineOpt,
    RefineSecondsOpt,
    check_refine_options,
    latent_batches,
    refine_all,
    refine_metadata,
    warn_if_cut,
)

if TYPE_CHECKING:  # for annotations only: the commands import torch lazily
    import torch

    from dcvae_tools.model import DCVAE


def _blank_like(image: "torch.Tensor") -> "torch.Tensor":
    """An all-white cell (the grid's padding colour) to keep grid columns aligned."""
    import torch

    return torch.ones_like(image)


def _paired_rows(top: "torch.Tensor", bottom: "torch.Tensor", cols: int) -> "torch.Tensor":
    """Interleave rows of ``cols`` cells: ``top`` images, then the matching ``bottom`` images, and so on."""
    import torch

    cells: list[torch.Tensor] = []
    for start in range(0, len(top), cols):
        for source in (top, bottom):
            row = list(source[start : start + cols])
            row += [_blank_like(source[0])] * (cols - len(row))
            cells.extend(row)
    return torch.stack(cells)


ShardSizeOpt = Annotated[
    int | None,
    typer.Option(
        "--shard-size",
        metavar="N",
        min=1,
        show_default="4096 for a folder",
        help="Images per shard of a sharded output folder (giving it means -o is a folder).",
    ),
]
NumWorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--num-workers",
        metavar="N",
        min=0,
        show_default="up to 4: the cores beyond two (0 on 2 cores)",
        help="Processes reading and converting images for a sharded output folder (0: in this process).",
    ),
]


@app.command(
    short_help="Encode images to latents (one file, or shards for datasets).",
    epilog=_examples(
        "dcvae encode shirts/ -o shirts.safetensors",
        "dcvae encode a.png b.jpg -o z.safetensors --sample --seed 0",
        "dcvae encode docs/examples/fashion-mnist/coat.png -o z.safetensors --refine 50   # closer to the image",
        "dcvae encode photos/ -o z.safetensors -m ./my-checkpoint --json",
        "dcvae encode dataset/ -r -o latents/ --shard-size 4096 --skip-bad      # sharded; re-run to resume",
        "torchrun --nproc-per-node 4 -m dcvae_tools.cli encode dataset/ -r -o latents/   # one process per GPU",
    )
)
def encode(
    images: ImagesArg,
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="LATENTS.safetensors|DIR",
            help="Where to write the latents: one .safetensors file, or a folder of shards (a name without suffix).",
        ),
    ],
    sample: Annotated[
        bool,
        typer.Option(
            "--sample",
            help="Draw from the posterior instead of taking its mean. With --seed the draws repeat for the same "
            "output form: one .safetensors file draws all noise at once, a sharded folder per shard (so the two, "
            "or folders with another --shard-size, draw differently).",
        ),
    ] = False,
    seed: SeedOpt = None,
    refine: RefineOpt = 0,
    refine_seconds: RefineSecondsOpt = None,
    skip_bad: SkipBadOpt = False,
    recursive: RecursiveOpt = False,
    shard_size: ShardSizeOpt = None,
    num_workers: NumWorkersOpt = None,
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
    """Encode images to latents (a .safetensors file, or a folder of shards for datasets).

    Writes tensor "latents" [N, D]: the encoder's posterior means, or posterior samples with --sample.
    The metadata records the source files as given (so `dcvae decode` can name its outputs and never
    overwrite them), the working folder when any of them is relative, the model's name and weights_sha256,
    and the seed; with --skip-bad also the skipped files and why (JSON under "skipped"). Those paths show
    your folder names: mind them before sharing the file. Images of any size or mode are converted to the
    model's format, with a note for each.

    When -o names a folder (no suffix, an existing folder, or --shard-size) the images are streamed: read by
    worker processes and written as DIR/shard-00000.safetensors, ... (--shard-size images each, with the
    same metadata) plus DIR/index.json (model, settings, every shard's rows and sha256, skipped files).
    Memory stays flat. Re-running the same command after an interruption keeps the finished shards and
    encodes the rest; a re-run with other settings is refused. Under torchrun each process encodes its
    own range of shards (on its own GPU with CUDA) and the folder is the same as one process writes.
    Every command that reads latents also reads such a folder.

    --refine N optimises each latent for N steps from the posterior mean so that it decodes closer to its
    image (recorded under "refine" in the metadata); one .safetensors file only.
    """
    from dcvae_tools.encoding.distributed import distributed_device, rank_and_world

    check_refine_options(refine, refine_seconds)
    if refine and sample:
        raise _usage("--refine optimises the posterior mean; drop --sample or --refine", "--refine")
    if seed is not None and not sample:
        raise _usage("--seed picks the posterior samples of --sample; the posterior means need none (add --sample "
                     "or drop --seed)", "--seed")
    sharded = _sharded_output(output, shard_size)
    if sharded and refine:
        raise _usage("--refine writes one .safetensors file; give -o NAME.safetensors (no sharded folder)", "--refine")
    if not sharded:
        if num_workers is not None:
            raise _usage("--num-workers is for a sharded output folder; give -o a folder", "--num-workers")
        if rank_and_world()[1] > 1:
            raise _usage("under torchrun, write a sharded folder: give -o a folder", "--output")
    rank = rank_and_world()[0]
    quiet = quiet or rank > 0  # under torchrun only rank 0 reports
    with session(quiet=quiet, json_mode=json_ and rank == 0, debug=debug) as out:
        paths = _expand(images, recursive)
        loaded = _load(model, revision, device or distributed_device(), dtype, batch_size, offline, cache_dir)
        _refuse_replacing_other_files(output, loaded, sharded)
        if sharded:
            _encode_sharded(out, loaded, paths, output, shard_size, num_workers, sample, seed, skip_bad)
        else:
            _encode_file(out, loaded, paths, output, sample, seed, skip_bad, refine, refine_seconds)


def _refuse_replacing_other_files(output: Path, loaded: "DCVAE", sharded: bool) -> None:
    """Refuse, before any work, an output inside the loaded model's folder, or an existing file that is not a
    latents file (a re-run may replace its own latents; nothing else is replaced)."""
    from safetensors import SafetensorError, safe_open

    from dcvae_tools.encoding.index import is_latents_folder, tensor_names
    from dcvae_tools.errors import DCVAEError

    _refuse_output_in_model_folder(output, loaded, "write the latents elsewhere")
    target = output.resolve()
    if not sharded and is_latents_folder(target.parent):
        raise DCVAEError(f"{output} is in the sharded latents folder {output.parent}, whose index would no longer "
                         "match; write the latents elsewhere")
    if sharded or not output.exists():
        return  # a folder's shards are checked by the writer
    try:
        with safe_open(str(output), framework="pt") as f:
            names = list(f.keys())
    except (SafetensorError, OSError, ValueError):
        names = None
    if names is None or "latents" not in names:
        what = "not a safetensors file" if names is None else f"it holds {tensor_names(names)}"
        raise DCVAEError(
            f"{output} exists and is not a latents file ({what}), so encoding would replace it; choose another -o, "
            "or delete the file"
        )


def _sharded_output(output: Path, shard_size: int | None) -> bool:
    """Whether -o names a sharded folder: --shard-size, an existing folder, or a name without a suffix."""
    if output.suffix.lower() == ".safetensors":
        if shard_size is not None:
            raise _usage(f"{output}: --shard-size writes a folder; give -o a folder name", "--shard-size")
        return False
    if shard_size is not None or output.is_dir() or not output.suffix:
        return True
    raise _usage(
        f"{output}: the file name must end in .safetensors (one file), or name a folder (no suffix, or give "
        "--shard-size) for a sharded folder",
        "--output",
    )


def _encode_file(
    out: Output,
    loaded: "DCVAE",
    paths: list[Path],
    output: Path,
    sample: bool,
    seed: int | None,
    skip_bad: bool,
    refine: int = 0,
    refine_seconds: float | None = None,
) -> None:
    """``dcvae encode -o FILE.safetensors``: every latent in memory, one file."""
    import json

    skipped: Skipped | None = [] if skip_bad else None
    mu, logvar, images, paths = _encode_paths(loaded, paths, out, skipped=skipped, keep_images=bool(refine))
    used_seed = _pick_seed(seed) if sample else None
    latents = loaded.sample_posterior(mu, logvar, used_seed) if sample else mu
    refined = None
    if refine:
        assert images is not None
        refined = refine_all(out, loaded, images, mu, refine, refine_seconds)
        latents = refined.latents.cpu()
        warn_if_cut(out, refined, refine)
    refine_info = refine_metadata(refine, refine_seconds, refined)
    metadata = {
        "format": "pt",
        "files": json.dumps([str(p) for p in paths]),
        "model": _model_record(loaded),
        "weights_sha256": loaded.weights_sha256(),
        "sample": json.dumps(sample),
    }
    if any(not path.is_absolute() for path in paths):  # where the relative "files" start from, for decode -o
        metadata["working_dir"] = os.getcwd()
    if refine:  # absent without --refine: the file is then exactly as before
        metadata["refine"] = json.dumps(refine_info)
    if used_seed is not None:
        metadata["seed"] = str(used_seed)
    if loaded.source.revision:
        metadata["revision"] = str(loaded.source.revision)
    if skipped is not None:
        metadata["skipped"] = json.dumps(_skipped_records(skipped))
    _write_safetensors(output, {"latents": latents}, metadata)
    _report_skipped(out, skipped or [])
    out.data(
        {
            "output": str(output),
            "count": len(paths),
            "latent_dim": loaded.latent_dim,
            "shape": list(latents.shape),
            "model": _model_name(loaded),
            "sample": sample,
            "seed": used_seed,
            **({"refine": refine_info} if refine else {}),
            **({"skipped": _skipped_records(skipped)} if skipped is not None else {}),
        }
    )
    seeded = f", posterior samples with seed {used_seed}" if sample else ""
    if refined is not None:
        seeded = f", refined ({refined.steps} steps, {refined.seconds:.1f} s)"
    out.done(f"wrote {output}: latents [{len(paths)}, {loaded.latent_dim}]{seeded}{_skipped_summary(skipped)}")


def _encode_sharded(
    out: Output,
    loaded: "DCVAE",
    paths: list[Path],
    output: Path,
    shard_size: int | None,
    num_workers: int | None,
    sample: bool,
    seed: int | None,
    skip_bad: bool,
) -> None:
    """``dcvae encode -o DIR``: streamed into shards through :func:`dcvae_tools.encoding.encode_files`."""
    from dcvae_tools.encoding import DEFAULT_SHARD_SIZE, encode_files

    result = encode_files(
        loaded,
        paths,
        output,
        shard_size=shard_size or DEFAULT_SHARD_SIZE,
        num_workers=num_workers,
        sample=sample,
        seed=seed,
        skip_bad=skip_bad,
        progress=out.progress,
    )
    skipped: Skipped | None = result.skipped if skip_bad else None
    if result.rows == 0 and result.skipped:
        _no_good_images(out, result.skipped, result.skipped, outcome=f"{output}/ holds no latents")
    _report_skipped(out, result.skipped)
    out.data(
        {
            "output": str(output),
            "count": result.rows,
            "latent_dim": loaded.latent_dim,
            "shards": result.shards,
            "shards_written": result.written,
            "shards_kept": result.reused,
            "model": _model_name(loaded),
            "sample": sample,
            "seed": result.seed,
            **({"skipped": _skipped_records(result.skipped)} if skip_bad else {}),
        }
    )
    seeded = f", posterior samples with seed {result.seed}" if sample else ""
    kept = f" ({result.reused} kept from an earlier run)" if result.reused else ""
    out.done(
        f"wrote {output}/: latents [{result.rows}, {loaded.latent_dim}] in {_count(result.shards, 'shard')}{kept}"
        f"{seeded}{_skipped_summary(skipped)}"
    )


@app.command(
    epilog=_examples(
        "dcvae decode z.safetensors -o decoded/",
        "dcvae decode z.safetensors --grid decoded.png --nrow 8",
        "dcvae decode latents/ -o decoded/",
    )
)
def decode(
    latents: Annotated[
        Path,
        typer.Argument(
            metavar="LATENTS",
            help="Latents written by `dcvae encode`: a .safetensors file or a sharded folder (read shard by shard).",
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="OUT_DIR",
            help="Folder for one PNG per latent (named after the sources).",
        ),
    ] = None,
    grid: Annotated[Path | None, typer.Option("--grid", metavar="GRID.png", help="One image with all of them.")] = None,
    nrow: NrowOpt = None,
    upscale: UpscaleOpt = None,
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
    """Decode latents to images.

    Writes one PNG per row of tensor "latents", named after the files it was encoded from when the
    file records them (else 00000.png, 00001.png, ...), and/or one grid image. A sharded latents folder
    (`dcvae encode ... -o DIR`) is read shard by shard, each checked against its sha256 in index.json.
    """
    _need_output(output, grid, options=("-o OUT_DIR", "--grid GRID.png"))
    _check_folder_output(output)
    _check_image_suffix(grid, "--grid")
    with session(quiet=quiet, debug=debug) as out:
        if not _is_latents(latents):
            _read_latents_missing(latents)
        import torch

        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        total, sources, working_dir, chunks = _latent_chunks(latents, loaded)
        names = _output_names(sources, total)
        # the images these latents were encoded from: decoding next to them must not replace them
        originals = _encoded_originals(sources, working_dir)
        _refuse_overwriting_images(originals, output, names, grid)
        kept: list[torch.Tensor] = []
        with contextlib.ExitStack() as stack:
            grid_file = stack.enter_context(_staged_file(grid)) if grid is not None else None
            stage = stack.enter_context(_staged_dir(output, originals)) if output is not None else None
            for start, _, decoded in _decode_stream(loaded, chunks, total, out, source=str(latents)):
                if stage is not None:
                    for offset, image in enumerate(decoded):
                        _save_one(loaded, image, stage / names[start + offset], upscale or 1)
                if grid is not None:
                    kept.append(decoded)
            if grid_file is not None:
                _save_grid(loaded, torch.cat(kept), grid_file, nrow, _grid_upscale(loaded, upscale))
        written = [f"{_count(total, 'image')} in {output}/"] if output is not None else []
        written += [str(grid)] if grid is not None else []
        out.done(f"decoded {_count(total, 'latent')}: wrote {' and '.join(written)}")


@app.command(
    epilog=_examples(
        "dcvae reconstruct shirts/ -o recon/",
        "dcvae reconstruct a.png b.png c.png --grid recon.png",
        "dcvae reconstruct docs/examples/fashion-mnist --grid recon.png --refine 50 --refine-seconds 30",
    )
)
def reconstruct(
    images: ImagesArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="OUT_DIR", help="Folder for one reconstruction per input."),
    ] = None,
    grid: Annotated[
        Path | None,
        typer.Option("--grid", metavar="GRID.png", help="Rows of inputs, each above its reconstructions."),
    ] = None,
    labels: Annotated[
        bool,
        typer.Option(
            "--labels/--no-labels",
            help="Name each grid row, input or reconstruction, in a strip on the left (--no-labels: the bare grid).",
        ),
    ] = True,
    upscale: UpscaleOpt = None,
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
    """Encode and decode images (reconstructions).

    Each image is encoded to its posterior mean and decoded. The grid shows up to 8 inputs per row
    with their reconstructions in the row below, as in the paper's figures. --refine N optimises each
    latent for N steps first, for reconstructions closer to the inputs. With --skip-bad, unreadable
    files are left out and listed at the end.
    """
    _need_output(output, grid, options=("-o OUT_DIR", "--grid GRID.png"))
    _check_folder_output(output)
    _check_image_suffix(grid, "--grid")
    check_refine_options(refine, refine_seconds)
    with session(quiet=quiet, debug=debug) as out:
        paths = _expand(images, recursive)
        import torch  # after the inputs are found, so a missing one is named at once

        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        names = _OutputNames(paths)
        _refuse_overwriting_images(paths, output, names.names, grid)
        skipped: Skipped | None = [] if skip_bad else None
        inputs: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        done = 0
        with contextlib.ExitStack() as stack:
            grid_file = stack.enter_context(_staged_file(grid)) if grid is not None else None
            stage = stack.enter_context(_staged_dir(output, paths)) if output is not None else None
            refined: list = []
            batches = latent_batches(loaded, paths, out, "reconstructing", skipped, refine, refine_seconds, refined)
            far: list[str] = []
            reason: str | None = None
            for chunk, x, mu, z in batches:
                recon = loaded.decode(z).cpu()
                # the domain's limits were measured on posterior means: check those (and their reconstructions)
                report = loaded.check_domain(x, mu, None if refine else recon, warn=False)
                if report is not None:
                    flagged = report.far.nonzero().flatten().tolist()
                    if flagged and reason is None:
                        from dcvae_tools.editing.domain import far_reason

                        reason = far_reason(loaded.latent_stats, report, flagged[0])
                    far += [str(chunk[i]) for i in flagged]
                if stage is not None:
                    for path, image in zip(chunk, recon, strict=True):
                        _save_one(loaded, image, stage / names.take(path), upscale or 1)
                done += len(chunk)
                if grid is not None:
                    inputs.append(x)
                    outputs.append(recon)
            if not done:
                _no_good_images(out, skipped or [], skipped or [])
            if grid_file is not None:
                cols = min(done, 8)
                cells = _paired_rows(torch.cat(inputs), torch.cat(outputs), cols)
                pairs = len(cells) // (2 * cols)
                _save_grid(loaded, cells, grid_file, cols, _grid_upscale(loaded, upscale),
                           row_labels=["input", "reconstruction"] * pairs if labels else None)
        _report_skipped(out, skipped or [])
        if refined:
            warn_if_cut(out, refined[0], refine)
        if far:
            from .latent_commands import _far_message

            out.warn(_far_message(loaded, far, done, reason))
        written = [f"{_count(done, 'image')} in {output}/"] if output is not None else []
        written += [str(grid)] if grid is not None else []
        out.done(f"reconstructed {_count(done, 'image')}: wrote {' and '.join(written)}{_skipped_summary(skipped)}")


@app.command(
    epilog=_examples(
        "dcvae sample -n 64 --seed 0 -o samples.png",
        "dcvae sample -n 16 --no-clamp --out-dir samples/",
    )
)
def sample(
    num: Annotated[int, typer.Option("--num", "-n", metavar="N", min=1, max=100_000, help="How many images.")] = 64,
    seed: SeedOpt = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="GRID.png", help="One grid image with all samples."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", metavar="DIR", help="Folder for one PNG per sample.")
    ] = None,
    clamp: Annotated[
        float | None,
        typer.Option(
            "--clamp",
            metavar="C",
            show_default="the model's",
            help="Sample N(0, I) clamped to [-C, C] (the paper's FID protocol: 1.0); implies the standard prior.",
        ),
    ] = None,
    no_clamp: Annotated[
        bool, typer.Option("--no-clamp", help="Sample the plain standard normal N(0, I), unclamped.")
    ] = False,
    prior: Annotated[
        Prior,
        typer.Option(
            "--prior",
            help="Where latents come from: 'mixture' (the Gaussian mixture fitted to the model's training latents, "
            "shipped with the release), 'standard' (N(0, I), the paper's protocol) or 'auto' (the mixture if the "
            "model ships one and no clamp is given, else N(0, I)).",
        ),
    ] = Prior.auto,
    nrow: NrowOpt = None,
    upscale: UpscaleOpt = None,
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
    """Generate new images from random latents.

    By default latents come from the release's fitted latent prior (a Gaussian mixture over where its training
    images' latents lie, which gives far better samples); a model without one, --prior standard, or --clamp /
    --no-clamp draw them from the standard normal N(0, I) instead, clamped to [-C, C], C being the model's
    sample_clamp (1.0 in the paper's FID protocol) unless --clamp or --no-clamp say otherwise.
    """
    _need_output(output, out_dir, options=("-o GRID.png", "--out-dir DIR"))
    _check_image_suffix(output, "--output")
    _check_folder_output(out_dir, "--out-dir", "-o")
    if clamp is not None and no_clamp:
        raise _usage("give --clamp C or --no-clamp, not both", "--clamp")
    if clamp is not None and not (math.isfinite(clamp) and clamp > 0):
        raise _usage(f"{clamp} is not a positive number", "--clamp")
    if clamp is not None and clamp > FLOAT32_MAX:
        raise _usage(f"{clamp} is beyond what a float32 latent holds; for no bound at all use --no-clamp", "--clamp")
    if prior == Prior.mixture and (clamp is not None or no_clamp):
        raise _usage("--clamp and --no-clamp apply to the standard prior only; drop them, or use --prior standard",
                     "--prior")
    names = _output_names(None, num)
    with session(quiet=quiet, debug=debug) as out:
        import torch

        # before any work: a grid that would replace one of the samples, or that a folder stands in the way of
        _refuse_overwriting_images([], out_dir, names, output, folder_option="--out-dir", grid_option="-o")
        loaded = _load(model, revision, device, dtype, batch_size, offline, cache_dir)
        if prior == Prior.mixture and loaded.latent_prior is None:
            raise _usage(f"{_model_name(loaded)} ships no fitted latent prior (latent_prior.safetensors); use "
                         "--prior standard, or fit one with `dcvae-train latent-stats RELEASE`", "--prior")
        used_seed = _pick_seed(seed)
        bound: Any = None if no_clamp else (clamp if clamp is not None else "config")
        z = loaded.random_latents(num, seed=used_seed, clamp=bound, prior=prior.value)
        kept: list[torch.Tensor] = []
        with contextlib.ExitStack() as stack:
            grid_file = stack.enter_context(_staged_file(output)) if output is not None else None
            stage = stack.enter_context(_staged_dir(out_dir, option="--out-dir")) if out_dir is not None else None
            for start, decoded in _decode_batches(loaded, z, out, "sampling"):
                if stage is not None:
                    for offset, image in enumerate(decoded):
                        _save_one(loaded, image, stage / names[start + offset], upscale or 1)
                if grid_file is not None:  # only the grid needs them all at once
                    kept.append(decoded)
            if grid_file is not None:
                _save_grid(loaded, torch.cat(kept), grid_file, nrow, _grid_upscale(loaded, upscale))
        written = [str(output)] if output is not None else []
        written += [f"{_count(num, 'image')} in {out_dir}/"] if out_dir is not None else []
        source = "the fitted mixture prior" if loaded.resolve_prior(prior.value, bound) == "mixture" else "N(0, I)"
        out.done(f"sampled {_count(num, 'image')} from {source} with seed {used_seed}: wrote "
                 f"{' and '.join(written)}")
