"""``dcvae-train``: train, export and list presets. Thin: parse, call training functions, print.

Examples:
    dcvae-train presets
    dcvae-train train --preset tiny --dry-run
    dcvae-train train --preset fashion-mnist-32
    torchrun --nproc_per_node 2 -m training train --preset fashion-mnist-32 --device cpu --run-dir runs/ddp
    dcvae-train export runs/00000-fashion-mnist-32-fashion-mnist -o exported/fashion-mnist-32
    dcvae-train release runs/00000-fashion-mnist-32-fashion-mnist --push my-org/my-dcvae --name my-dcvae
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .stop_request import StoppedBySignal

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # click's plain help, as `dcvae`'s: rich's boxes cut option names at 80 columns
    pretty_exceptions_enable=False,
    help="Train DC-VAE checkpoints and export them to the dcvae-tools release format.",
)


class UserError(Exception):
    """A mistake in the command line; printed as one line."""


SNAPSHOT_OPTION = typer.Option(
    metavar="ITERATION",
    min=1,
    help="Use the run's network snapshot at this iteration (network-snapshots/iteration-NNNNNNN, what "
    "`dcvae-train curves` measures) instead of its latest checkpoint: release the snapshot the curves favour.",
)
DECODER_STATISTICS_OPTION = typer.Option(
    help="The decoder's BatchNorm running statistics: 'training' (as training left them) or 'posterior' "
    "(recomputed from posterior draws of up to 10,000 training images; for fashion-mnist-32 better "
    "reconstructions and mixture-prior samples, worse N(0, I) samples: measure before releasing, docs/experiments.md).",
)


def _decoder_statistics(value: str) -> str:
    from .batchnorm_statistics import DECODER_STATISTICS

    if value not in DECODER_STATISTICS:
        raise UserError(f"--decoder-statistics {value}: must be one of {', '.join(DECODER_STATISTICS)}")
    return value


def _refuse_progressive_export_options(run: Path, training_state: bool, decoder_statistics: str) -> None:
    if decoder_statistics != "training":
        raise UserError(f"--decoder-statistics {decoder_statistics} is for single-resolution runs; a progressive "
                        "run's stages are exported with the statistics training left: drop the option")
    if training_state:
        raise UserError(f"--training-state is for single-resolution runs; {run} is progressive and continues "
                        "from its own folder (`dcvae-train train --run-dir` it again): drop the option")


def _export(run: Path, output: Path, *, decoder_statistics: str, data_root: str | None, **kwargs: Any) -> Path:
    """``export_run`` with its progress on stderr and a missing dataset (for the statistics) as a UserError."""
    from .export import export_run

    try:
        return export_run(run, output, decoder_statistics=decoder_statistics, data_root=data_root,
                          progress=lambda m: typer.echo(m, err=True), **kwargs)
    except (ValueError, FileNotFoundError) as exc:
        if decoder_statistics == "training":
            raise
        raise UserError(f"--decoder-statistics {decoder_statistics} for {run}: {exc}") from None


def _next_run_dir(outdir: Path, preset: str, dataset: str) -> Path:
    outdir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in outdir.iterdir() if (m := re.match(r"^(\d{5})-", p.name))]
    safe_dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset)
    return outdir / f"{max(numbers, default=-1) + 1:05d}-{preset}-{safe_dataset}"


@app.command()
def presets() -> None:
    """List the training presets and the release each is the recipe of (tab-separated text when piped).

    A release was trained from its preset and then, in most cases, continued with changed options and shipped
    at a chosen snapshot: `bash reports/reproduce.sh NAME` in a clone runs every step of release NAME.
    """
    from rich.console import Console

    from dcvae_tools.cli._output import print_table

    from .presets import all_presets

    rows = []
    for name, o in all_presets().items():
        args = " ".join(f"{k}={v}" for k, v in o.architecture_args.items())
        rows.append(
            [name, o.dataset, o.objective, f"{o.architecture} {args}".strip(), str(o.latent_dim),
             f"{o.total_iterations:,}", o.reproduces or "-"]
        )
    print_table(Console(), ["preset", "data", "objective", "backbone", "latent", "iterations", "base of release"],
                rows)
    Console(stderr=True).print("A release may continue its base preset with changed options; every step of "
                               "release NAME: `bash reports/reproduce.sh NAME` in a clone of the repository.")


@app.command()
def train(
    preset: Annotated[str, typer.Option(help="Preset name (see `dcvae-train presets`).")] = "tiny",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="KEY=VALUE",
                     help="Override an option (VALUE is JSON), repeatable, e.g. --set lr=1e-4."),
    ] = None,
    data_root: Annotated[str | None, typer.Option(help="Where the dataset lives (CIFAR-10, STL-10, ...).")] = None,
    outdir: Annotated[Path, typer.Option(help="Parent folder of numbered run folders.")] = Path("runs"),
    run_dir: Annotated[Path | None, typer.Option(help="Use (or resume) exactly this run folder.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 (default: cuda if available).")] = None,
    stop_after: Annotated[int | None, typer.Option(help="Stop (with a checkpoint) at this iteration.")] = None,
    max_minutes: Annotated[float | None, typer.Option(help="Stop (with a checkpoint) after this long.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved options and exit.")] = False,
    progress: Annotated[
        bool, typer.Option(help="Show a progress bar and loss lines on stderr (only when it is a terminal).")
    ] = True,
    resume_from: Annotated[
        str | None,
        typer.Option(
            help="Start a new run from another run folder, a release folder, a released model's name or a Hub "
            "repo (its training_state.safetensors when it has one: an exact continuation; else its encoder and "
            "decoder with a fresh discriminator, from iteration 0). From a training state the iteration count "
            "continues, so --set total_iterations is the end point. The run trains with this command's options; "
            "it names those that differ from the source's. With other data (--set dataset=folder:PATH) it "
            "fine-tunes."
        ),
    ] = None,
    offline: Annotated[bool, typer.Option(help="With --resume-from: never touch the network (cache only).")] = False,
) -> None:
    """Train (or resume) a run. Re-running with the same --run-dir continues from its checkpoint exactly.

    Examples:
      dcvae-train train --preset tiny
      dcvae-train train --preset fashion-mnist-32 --run-dir runs/fm --max-minutes 40   # again: continues
      dcvae-train train --preset cifar10-autogan32 --data-root ~/data --device cuda
      dcvae-train train --preset fashion-mnist-32 --resume-from exported/fm --set total_iterations=50000
      dcvae-train train --preset fashion-mnist-32 --resume-from fashion-mnist-32 \\
          --set dataset=folder:my_images --set total_iterations=1000   # fine-tune the released model (no state: from 0)
    """
    import torch

    from .distributed import cleanup, init_distributed, launched_with_several_ranks
    from .options import parse_override
    from .presets import get_preset, get_schedule
    from .training_loop import training_loop

    overrides = dict(parse_override(s) for s in (set_ or []))
    if data_root is not None:
        overrides["data_root"] = data_root
    if max_minutes is not None:
        overrides["max_minutes"] = max_minutes
    options = get_preset(preset).override(**overrides)
    schedule = get_schedule(preset)
    if dry_run:
        if resume_from is not None and schedule is None:  # what the run would start from, checked
            from .resume import starting_point

            typer.echo(starting_point(resume_from, options, local_files_only=offline).note, err=True)
        typer.echo(options.to_json(), nl=False)
        return
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if launched_with_several_ranks():  # refused before joining the group, so no rank is left waiting in it
        if run_dir is None:
            raise UserError("with torchrun, pass --run-dir so that every rank uses the same folder")
        if schedule is not None:
            raise UserError("progressive presets run in one process for now: launch without torchrun")
    if schedule is not None and resume_from is not None:
        raise UserError(f"--resume-from is for single-resolution presets; {preset} grows its networks and continues "
                        "only its own run: pass the same --run-dir again instead")
    info = init_distributed(torch.device(device).type)
    if info.enabled and torch.device(device).type == "cuda":
        device = f"cuda:{info.local_rank}"
    numbered = run_dir is None
    if run_dir is None:
        run_dir = _next_run_dir(outdir, options.preset, options.dataset)
    if info.is_main:
        typer.echo(f"run folder: {run_dir}", err=True)
    show_bar = progress and info.is_main and sys.stderr.isatty()
    failed = True
    try:
        if schedule is not None:
            from .progressive import progressive_training_loop

            summary = progressive_training_loop(options, schedule, run_dir, device=device, stop_after=stop_after,
                                                progress=show_bar)
        else:
            summary = training_loop(
                options,
                run_dir,
                device=device,
                stop_after=stop_after,
                dist_info=info,
                progress=show_bar,
                resume_from=resume_from,
                hub_options={"local_files_only": offline},
            )
        failed = False
    finally:
        cleanup(info, failed=failed)
    if info.is_main:
        typer.echo(json.dumps(summary, indent=2))
    if summary.get("stopped_by"):
        if info.is_main:
            typer.echo(
                f"stopped by {summary['stopped_by']} at iteration {summary['iteration']:,} with a checkpoint in "
                f"{run_dir}; to continue, run the same command "
                + (f"with --run-dir {run_dir}" if numbered else "again"),
                err=True,
            )
        raise StoppedBySignal(signal.Signals[summary["stopped_by"]].value)
    if info.is_main and not summary.get("finished", True):
        typer.echo(
            f"stopped at iteration {summary['iteration']:,}"
            + (f" of {options.total_iterations:,}" if schedule is None else "")
            + f" (--max-minutes or --stop-after) with a checkpoint in {run_dir}; to continue, run the same command "
            + (f"with --run-dir {run_dir}" if numbered else "again"),
            err=True,
        )


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="A run folder with checkpoint.pt.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Release folder to write.")],
    metrics: Annotated[Path | None, typer.Option(help="JSON report whose 'metrics' go into config.json.")] = None,
    attributes: Annotated[Path | None, typer.Option(help="attributes.safetensors to ship with the model.")] = None,
    manifest: Annotated[Path | None, typer.Option(help="Add/replace this model in a weights_manifest.json.")] = None,
    name: Annotated[str | None, typer.Option(help="Manifest name (default: the preset name).")] = None,
    repo_id: Annotated[str | None, typer.Option(help="Hub repo id recorded in the manifest.")] = None,
    bundled: Annotated[bool, typer.Option(help="Mark the manifest entry as bundled in the wheel.")] = False,
    default: Annotated[bool, typer.Option(help="Make it the manifest's default model.")] = False,
    training_state: Annotated[
        bool,
        typer.Option(help="Also write training_state.safetensors (for `dcvae-train train --resume-from`)."),
    ] = False,
    decoder_statistics: Annotated[str, DECODER_STATISTICS_OPTION] = "training",
    data_root: Annotated[str | None, typer.Option(help="Where the training data lives (with posterior).")] = None,
) -> None:
    """Write a run's checkpoint in the release format (EMA decoder, spectral norm folded, safetensors).

    Examples:
      dcvae-train export runs/00000-fashion-mnist-32-fashion-mnist -o exported/fashion-mnist-32
    """
    from dcvae_tools.publish import manifest_entry
    from dcvae_tools.release import load_attributes

    from .export import is_progressive, update_manifest
    from .options import TrainingOptions
    from .training_loop import load_checkpoint

    if not (run / "checkpoint.pt").is_file():
        raise UserError(f"{run} has no checkpoint.pt: pass a run folder made by `dcvae-train train`")
    if (run / "progressive_schedule.json").is_file():  # refused before the (large) checkpoint is read
        _refuse_progressive_export_options(run, training_state, _decoder_statistics(decoder_statistics))
    # read once: a run still training may replace it, and the report's iteration is checked against what is exported
    state = load_checkpoint(run / "checkpoint.pt")
    if is_progressive(state):
        _refuse_progressive_export_options(run, training_state, _decoder_statistics(decoder_statistics))
    metric_values = (
        _release_metrics(metrics, _decoder_statistics(decoder_statistics), iteration=int(state["iteration"]), run=run)
        if metrics
        else None
    )
    attrs = None
    if attributes is not None:
        latent_dim = TrainingOptions.from_dict(json.loads(state["options"])).latent_dim
        attrs = load_attributes(attributes, latent_dim)
    folder = _export(run, output, metrics=metric_values, attributes=attrs, training_state=training_state,
                     decoder_statistics=_decoder_statistics(decoder_statistics), data_root=data_root, checkpoint=state)
    typer.echo(f"wrote {folder}")
    typer.echo(f"next: `dcvae-train latent-stats {folder}` adds the fitted latent prior (what `dcvae sample` draws "
               "from; N(0, I) without it), the domain check's statistics and principal directions", err=True)
    if manifest is not None:
        from dcvae_tools.config import ModelConfig

        config = ModelConfig.from_file(folder / "config.json")
        model_name = name or config.preset
        entry = manifest_entry(folder, repo_id=repo_id or f"dcvae-tools/{model_name}", bundled=bundled)
        update_manifest(manifest, model_name, entry, default=default)
        typer.echo(f"updated {manifest}: {model_name}")


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Argument(help="A run folder, a release folder, a model name or a Hub repo.")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metric names (see `dcvae-train metrics`).")] = (
        "recon_mse_test,recon_psnr_test,fd10k_classifier,rfd_classifier,probe_linear_test"
    ),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON report to write.")] = None,
    dataset: Annotated[str | None, typer.Option(help="Evaluation data (default: the model's).")] = None,
    data_root: Annotated[str | None, typer.Option(help="Where the data lives.")] = None,
    num_samples: Annotated[int | None, typer.Option(help="Samples for sampling FDs (the name carries it).")] = None,
    batch_size: Annotated[int, typer.Option(help="Images per forward pass.")] = 256,
    seed: Annotated[int, typer.Option(help="Seed of sampled latents.")] = 0,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, ...")] = None,
    inception_weights: Annotated[Path | None, typer.Option(help="pytorch-fid's pt_inception-2015-12-05-*.pth.")] = None,
    vgg_weights: Annotated[Path | None, typer.Option(help="torchvision's vgg16-397923af.pth.")] = None,
    edit_strength: Annotated[float, typer.Option(help="Strength of the edit_success_* edits.")] = 1.0,
    sample_prior: Annotated[
        str,
        typer.Option(
            help="Latents for sampling FDs: 'standard' (N(0, I), the paper's), 'fitted' (a diagonal Gaussian "
            "fitted to 10k training images' latents) or 'mixture' (the release's fitted Gaussian mixture, "
            "latent_prior.safetensors; fitted to 20k training images for a model without one). Anything but "
            "'standard' is recorded as a deviation."
        ),
    ] = "standard",
    cache_dir: Annotated[Path | None, typer.Option(help="Classifiers and reference statistics.")] = None,
    test_limit: Annotated[
        int | None,
        typer.Option(min=1, help="Use a fixed seeded subset of the test split (quick checks; recorded in the report)."),
    ] = None,
    log_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for metric-<name>.jsonl logs, one line appended per metric (default: the run "
                     "folder when MODEL is one, else none)."),
    ] = None,
    log: Annotated[
        bool,
        typer.Option("--log/--no-log", help="--no-log writes no metric-<name>.jsonl logs, not even into a run "
                     "folder (keeps a committed run folder unchanged)."),
    ] = True,
) -> None:
    """Measure a checkpoint with the paper's metrics and write a JSON report (the source of every number in
    model cards and the README). Evaluating a run folder also appends one line per metric to its
    metric-<name>.jsonl logs (the history of its measurements) unless --log-dir sends them elsewhere or
    --no-log leaves them out.

    Examples:
      dcvae-train eval fashion-mnist-32 -o reports/fashion-mnist-32.json
      dcvae-train eval runs/00000-fashion-mnist-32-fashion-mnist --metrics fd10k_classifier,fd10k_lite0,rfd_lite0
      dcvae-train eval my-cifar-model --metrics fid50k_inception --inception-weights pt_inception-2015-12-05.pth
    """
    from .evaluate import evaluate

    if log_dir is not None and not log:
        raise UserError(f"--log-dir {log_dir} and --no-log contradict each other: drop one")
    report = evaluate(
        model,
        metrics,
        dataset=dataset,
        data_root=data_root,
        num_samples=num_samples,
        batch_size=batch_size,
        seed=seed,
        cache_dir=cache_dir,
        out_json=output,
        device=device,
        inception_weights=inception_weights,
        vgg_weights=vgg_weights,
        edit_strength=edit_strength,
        test_limit=test_limit,
        sample_prior=sample_prior,
        log_dir=log_dir,
        write_logs=log,
    )
    typer.echo(json.dumps(report["metrics"], indent=2))


@app.command("metrics")
def metrics_() -> None:
    """List the evaluation metrics (names encode the protocol: fd10k_classifier = Frechet distance of 10k
    samples in the repo's classifier's feature space)."""
    from .metrics import list_metrics

    for name in list_metrics():
        typer.echo(name)


@app.command()
def compare(
    reports: Annotated[list[Path], typer.Argument(help="Evaluation reports (JSON from `dcvae-train eval`).")],
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metrics to show (default: every metric in the reports).")
    ] = None,
    allow_mixed: Annotated[
        bool, typer.Option(help="Compare reports on different datasets or with different protocol deviations.")
    ] = False,
) -> None:
    """Print evaluation reports side by side as a markdown table (one row per checkpoint).

    Examples:
      dcvae-train compare reports/fashion-mnist-32.json reports/baselines/fashion-mnist-32-*.json
      dcvae-train compare reports/*.json --metrics recon_mse_test,rfd_classifier --allow-mixed
    """
    from .compare import ReportError, compare_reports

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    try:
        typer.echo(compare_reports(reports, names, allow_mixed=allow_mixed))
    except ReportError as exc:
        raise UserError(str(exc)) from None


@app.command()
def release(
    source: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_OR_RELEASE_FOLDER",
            help="A run folder with checkpoint.pt; with --push also a release folder (published as it is).",
        ),
    ],
    name: Annotated[str, typer.Option(help="Manifest name of the checkpoint, e.g. fashion-mnist-32.")],
    push: Annotated[
        str | None,
        typer.Option(
            metavar="REPO_ID",
            help="Publish to this Hub repo: upload, download the pushed commit and check every file's sha256, then "
            "pin that commit and the hashes in the manifest (which is left unchanged if any step fails).",
        ),
    ] = None,
    repo_id: Annotated[
        str | None, typer.Option(help="Hub repo id recorded in the manifest (required without --push).")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Evaluation report (JSON) whose metrics go into the config and the model card.")
    ] = None,
    bundle: Annotated[
        bool | None,
        typer.Option(
            "--bundle/--no-bundle",
            help="Write it into dcvae_tools/weights/NAME so the wheel ships it (default: yes, except with --push).",
            show_default=False,
        ),
    ] = None,
    default: Annotated[bool, typer.Option(help="Make it the manifest's default model.")] = False,
    manifest: Annotated[
        Path | None, typer.Option(help="The manifest to update (default: the repository's weights_manifest.json).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Release folder (default: the bundled location when --bundle)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed choosing the attribute examples.")] = 0,
    attribute_draws: Annotated[int, typer.Option(
        min=1,
        help="Draw each class attribute's 20 + 20 examples with this many seeds (from --seed) and judge each "
             "draw's direction, at the draws' mean length, by its edits of held-out training images; --seed's draw "
             "ships unless another is ahead by more than two standard errors (the test split is not read).",
    )] = 1,
    training_state: Annotated[
        bool,
        typer.Option(help="With --push: also publish training_state.safetensors (for `train --resume-from`)."),
    ] = False,
    endpoint: Annotated[
        str | None, typer.Option(help="With --push: the Hub's URL (default: HF_ENDPOINT or the Hub).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="With --push: a Hub token with write access (default: HF_TOKEN or the login).")
    ] = None,
    private: Annotated[bool, typer.Option(help="With --push: create the repo private (if it is new).")] = False,
    decoder_statistics: Annotated[str, DECODER_STATISTICS_OPTION] = "training",
    data_root: Annotated[str | None, typer.Option(help="Where the training data lives.")] = None,
    snapshot: Annotated[int | None, SNAPSHOT_OPTION] = None,
) -> None:
    """Export a run as a released checkpoint: attributes computed (20 + 20 training images each), metrics
    from an evaluation report, sha256s in the manifest, and (by default) bundled in the package. With
    --push, publish it (or a release folder) on the Hub and pin the pushed commit in the manifest.

    Examples:
      dcvae-train release runs/00000-fashion-mnist-32-fashion-mnist --name fashion-mnist-32 \\
          --repo-id dcvae-tools/fashion-mnist-32 --report reports/fashion-mnist-32.json --default
      dcvae-train release runs/00000-fashion-mnist-32-fashion-mnist --push my-org/my-dcvae --name my-dcvae \\
          --training-state
      dcvae-train release dcvae_tools/weights/fashion-mnist-32 --push dcvae-tools/fashion-mnist-32 \\
          --name fashion-mnist-32
      dcvae-train release runs/00000-fashion-mnist-32-fashion-mnist --snapshot 72500 --name fashion-mnist-32 \\
          --repo-id dcvae-tools/fashion-mnist-32 --report reports/fashion-mnist-32.json --default
    """
    manifest = manifest or _repository_manifest()
    if snapshot is not None and training_state:
        raise UserError(f"--snapshot {snapshot} has no training state of its own (the run's checkpoint.pt is at "
                        "another iteration): drop --training-state, or release the run's checkpoint")
    if push is None:
        if training_state or endpoint or token or private:
            raise UserError("--training-state, --endpoint, --token and --private go with --push")
        if repo_id is None:
            raise UserError("pass --repo-id (the Hub repo recorded in the manifest), or --push REPO_ID to publish")
        folder, iterations = _export_for_release(source, name, report, True if bundle is None else bundle, output,
                                                 seed, training_state=False, attribute_draws=attribute_draws,
                                                 decoder_statistics=_decoder_statistics(decoder_statistics),
                                                 data_root=data_root, snapshot=snapshot)
        _record_release(folder, name, repo_id, manifest, bundled=True if bundle is None else bundle,
                        default=default, iterations=iterations)
        return
    if repo_id not in (None, push):
        raise UserError(f"--repo-id {repo_id} and --push {push} differ; --push alone names the repo")
    if default:
        raise UserError("--push changes only NAME's entry; make it the default with a release without --push")
    _release_and_push(source, name, push, manifest=manifest, report=report, bundle=bool(bundle), output=output,
                      seed=seed, attribute_draws=attribute_draws, training_state=training_state, endpoint=endpoint,
                      token=token, private=private,
                      decoder_statistics=_decoder_statistics(decoder_statistics), data_root=data_root,
                      snapshot=snapshot)


def _repository_manifest() -> Path:
    """The weights_manifest.json at the root of the checkout dcvae_tools runs from, else the one here."""
    import dcvae_tools

    checkout = Path(dcvae_tools.__file__).resolve().parent.parent / "weights_manifest.json"
    return checkout if checkout.is_file() else Path("weights_manifest.json")


def _export_for_release(
    run: Path, name: str, report: Path | None, bundle: bool, output: Path | None, seed: int, *, training_state: bool,
    decoder_statistics: str = "training", data_root: str | None = None, snapshot: int | None = None,
    attribute_draws: int = 1,
) -> tuple[Path, int]:
    """Export a run folder (its checkpoint, or its network snapshot at iteration ``snapshot``) as a release
    (metrics, attributes, optionally its training state); returns the folder and the networks' iteration."""
    from dcvae_tools.manifest import BUNDLED_WEIGHTS_DIR

    from .attributes import ATTRIBUTES, compute_attributes
    from .export import is_progressive, model_from_checkpoint, model_from_run, snapshot_folder
    from .training_loop import load_checkpoint

    if snapshot is None and not (run / "checkpoint.pt").is_file():
        raise UserError(f"{run} has no checkpoint.pt: pass a run folder made by `dcvae-train train`")
    if snapshot is not None:
        try:
            snapshot_folder(run, snapshot)
        except FileNotFoundError as exc:
            raise UserError(f"--snapshot {snapshot}: {exc}") from None
    if output is None:
        if not bundle:
            raise UserError("pass --output when not bundling")
        output = BUNDLED_WEIGHTS_DIR / name
    state = None
    if snapshot is None:
        # read once: a run still training may replace it, and the report's iteration, the attributes and the
        # exported weights must all be of the networks it holds
        state = load_checkpoint(run / "checkpoint.pt")
        if is_progressive(state):
            _refuse_progressive_export_options(run, training_state, decoder_statistics)
    iteration = snapshot if state is None else int(state["iteration"])
    metrics = (
        _release_metrics(report, decoder_statistics, iteration=iteration, run=run, snapshot=snapshot is not None)
        if report
        else {}
    )
    model = model_from_run(run, metrics, snapshot=snapshot) if state is None else model_from_checkpoint(state, metrics)
    attributes = {}
    if model.config.dataset in ATTRIBUTES:
        typer.echo(f"computing the attributes of {model.config.dataset} ...", err=True)
        attributes = compute_attributes(model, model.config.dataset, seed=seed, data_root=data_root,
                                        draws=attribute_draws)
    folder = _export(run, output, metrics=metrics, attributes=attributes, training_state=training_state,
                     decoder_statistics=decoder_statistics, data_root=data_root, snapshot=snapshot, checkpoint=state)
    typer.echo(f"wrote {folder} ({', '.join(sorted(attributes)) or 'no attributes'})", err=True)
    return folder, iteration


def _report_iteration(details: dict[str, Any]) -> int | None:
    """The iteration of the networks a report measured: recorded for a run folder, and in a release's config
    description ("...; 72,500 iterations of 64 images"); None when neither says."""
    from .export import iterations_in_description

    if isinstance(details.get("iteration"), int):
        return details["iteration"]
    return iterations_in_description(details.get("model_config", {}).get("description"))


def _release_metrics(report: Path, decoder_statistics: str = "training", *, iteration: int | None = None,
                    run: Path | None = None, snapshot: bool = False) -> dict[str, Any]:
    """The metrics of an evaluation report, refused when its samples were not drawn as the paper does (a card
    states its sample metrics as the paper's protocol, N(0, I), clamped), when the model it measured had other
    decoder BatchNorm statistics than this export will write (its config's description says which), or, given
    the ``iteration`` being released, when it measured networks of another iteration."""
    from .export import POSTERIOR_STATISTICS_NOTE

    data = json.loads(report.read_text())
    details = data.get("details", {})
    measured_iteration = _report_iteration(details)
    if iteration is not None and measured_iteration is not None and measured_iteration != iteration:
        where = (f"`dcvae-train eval {run or 'RUN'}/network-snapshots/iteration-{iteration:07d} -o REPORT`" if snapshot
                 else f"`dcvae-train eval {run or 'RUN'} -o REPORT` measures its checkpoint; a run still training "
                      "moves on, so stop it first or release a network snapshot with --snapshot")
        raise UserError(
            f"{report} measured networks at iteration {measured_iteration:,} and the networks being exported are at "
            f"{iteration:,}: evaluate those ({where})"
        )
    prior = details.get("settings", {}).get("sample_prior", "standard")
    if prior != "standard":
        raise UserError(
            f"{report} drew its samples from the {prior!r} latent prior; a release's metrics use the paper's "
            "N(0, I): evaluate again without --sample-prior (`dcvae-train eval RELEASE -o REPORT --metrics ...`)"
        )
    description = details.get("model_config", {}).get("description")
    if isinstance(description, str):  # reports that record the measured model's config
        measured = "posterior" if POSTERIOR_STATISTICS_NOTE in description else "training"
        if measured != decoder_statistics:
            raise UserError(
                f"{report} measured a model with {measured!r} decoder BatchNorm statistics and this export writes "
                f"{decoder_statistics!r} ones: pass --decoder-statistics {measured}, or evaluate the export again"
            )
    return data["metrics"]


def _record_release(folder: Path, name: str, repo_id: str, manifest: Path, *, bundled: bool, default: bool,
                    iterations: int) -> None:
    """Add the release to the manifest, unpublished (revision null)."""
    from dcvae_tools.publish import manifest_entry

    from .export import update_manifest

    entry = manifest_entry(folder, repo_id=repo_id, bundled=bundled)
    entry["training_iterations"] = iterations
    update_manifest(manifest, name, entry, default=default)
    typer.echo(f"wrote {folder}; updated {manifest}")


def _release_and_push(source: Path, name: str, repo_id: str, *, manifest: Path, report: Path | None, bundle: bool,
                      output: Path | None, seed: int, training_state: bool, endpoint: str | None, token: str | None,
                      private: bool, decoder_statistics: str = "training", data_root: str | None = None,
                      snapshot: int | None = None, attribute_draws: int = 1) -> None:
    """Publish a run (exported first) or a release folder, and pin the pushed commit in the manifest."""
    import tempfile

    from dcvae_tools.manifest import TRAINING_STATE_NAME
    from dcvae_tools.publish import publish

    def say(message: str) -> None:
        typer.echo(message, err=True)

    if bundle:
        # the bundled copy is checked against the manifest's hashes: it may change only together with them, and
        # a push can still fail after the export; publish first, then bundle the published release
        raise UserError("--bundle with --push would change the bundled copy before the push is verified; "
                        "push without --bundle")
    with tempfile.TemporaryDirectory(prefix="dcvae-release-") as tmp:
        extra = {}
        if (source / "checkpoint.pt").is_file() or snapshot is not None:
            say(f"exporting the run {source}"
                + (f" (its network snapshot at {snapshot:,})" if snapshot is not None else ""))
            target = output if output is not None else Path(tmp) / name
            folder, iterations = _export_for_release(source, name, report, bundle, target, seed,
                                                     training_state=training_state,
                                                     decoder_statistics=decoder_statistics, data_root=data_root,
                                                     snapshot=snapshot, attribute_draws=attribute_draws)
            extra["training_iterations"] = iterations
        elif (source / "config.json").is_file():
            if report is not None or output is not None or decoder_statistics != "training" or attribute_draws != 1:
                raise UserError(f"{source} is a release folder, published as it is: --report, --output, "
                                "--attribute-draws and --decoder-statistics apply to run folders")
            folder = source
        else:
            raise UserError(f"{source} is neither a run folder (checkpoint.pt) nor a release folder (config.json)")
        state = folder / TRAINING_STATE_NAME if training_state else None
        if state is not None and not state.is_file():
            raise UserError(f"{folder} has no {TRAINING_STATE_NAME}: export the run with --training-state first")
        result = publish(folder, repo_id, name=name, manifest_path=manifest, token=token, endpoint=endpoint,
                         private=private, training_state=state, bundled=None, extra=extra,
                         progress=say)
    typer.echo(f"published {name}: {repo_id}@{result.revision} ({len(result.files)} files verified); "
               f"pinned in {manifest}")


@app.command("latent-stats")
def latent_stats(
    release: Annotated[
        str,
        typer.Argument(metavar="RELEASE_OR_NAME", help="A release folder, or a bundled model's name (its folder)."),
    ],
    data_root: Annotated[str | None, typer.Option(help="Where the model's training data lives.")] = None,
    figure: Annotated[
        Path | None, typer.Option(help="Also draw the principal components' figure here (rows: PC, columns: std).")
    ] = None,
    manifest: Annotated[
        Path | None,
        typer.Option(help="Update this manifest's entry for the model (default: the repository's, for bundled ones)."),
    ] = None,
    prior_components: Annotated[
        int, typer.Option(min=1, max=256, help="Gaussians in the fitted latent prior (latent_prior.safetensors).")
    ] = 10,
    prior_restarts: Annotated[
        int, typer.Option(min=1, max=1000, help="EM starts for the latent prior; the fit of highest likelihood is "
                          "kept (one start can end in a poor optimum: worse samples).")
    ] = 10,
    name: Annotated[
        str | None,
        typer.Option(help="The model's name in --manifest (default: the folder's name, e.g. for a release "
                     "exported with `release -o FOLDER --name NAME`)."),
    ] = None,
) -> None:
    """Compute a release's latent statistics, fitted latent prior, attribute strength units and principal components.

    Writes latent_stats.safetensors (mean and covariance of the training split's latents; held-out test quantiles
    of Mahalanobis distance, re-encoding distance and reconstruction error, and the out-of-domain limit),
    latent_prior.safetensors (a Gaussian mixture fitted by EM to one posterior draw of each training image, which
    `dcvae sample` draws from) and rewrites attributes.safetensors with each direction's unit and the first ten
    principal components (pc01 .. pc10). A model card exactly as generated is redrawn to list them (a card edited
    by hand is left alone). For a bundled model the manifest's sha256 and sizes are updated. docs/editing.md and
    docs/design.md say what each artefact is.

    Examples:
      dcvae-train latent-stats fashion-mnist-32 --figure docs/figures/pca-fashion-mnist-32.png
      dcvae-train latent-stats exported/my-model
    """
    from dcvae_tools.manifest import BUNDLED_WEIGHTS_DIR

    from .latent_stats import regenerate

    folder = Path(release)
    bundled_name = None
    if not (folder / "config.json").is_file():
        if (BUNDLED_WEIGHTS_DIR / release / "config.json").is_file():
            folder, bundled_name = BUNDLED_WEIGHTS_DIR / release, release
        else:
            raise UserError(f"{release} is neither a release folder (config.json) nor a bundled model's name")
    elif folder.resolve().parent == BUNDLED_WEIGHTS_DIR.resolve():
        bundled_name = folder.name
    if name is not None and manifest is None and bundled_name is None:
        raise UserError(f"--name {name} names an entry of a manifest: pass --manifest as well")
    if manifest is None and bundled_name is not None:
        manifest = _repository_manifest()
    name = name or bundled_name or folder.name
    old = None
    if manifest is not None:  # checked before the encoding, which takes minutes, so a wrong name costs nothing
        data = json.loads(manifest.read_text()) if manifest.is_file() else {"models": {}}
        old = data.get("models", {}).get(name)
        if old is None:
            known = ", ".join(sorted(data.get("models", {}))) or "none"
            raise UserError(f"{manifest} has no model {name!r} to update (it has: {known}); pass --name NAME")
    summary = regenerate(folder, data_root, figure=figure, prior_components=prior_components,
                         prior_restarts=prior_restarts, progress=lambda m: typer.echo(m, err=True))
    if old is not None:  # set exactly when there is a manifest entry to update
        from dcvae_tools.publish import manifest_entry

        from .export import update_manifest

        entry = manifest_entry(folder, repo_id=old["repo_id"], revision=old.get("revision"),
                               bundled=bool(old.get("bundled")), description=old.get("description"))
        update_manifest(manifest, name, {**old, "files": entry["files"]}, default=data.get("default_model") == name)
        typer.echo(f"updated {manifest}: {name}", err=True)
    if figure is not None:
        typer.echo(f"wrote {figure}", err=True)
    typer.echo(json.dumps(summary, indent=2))


@app.command("edit-report")
def edit_report_(
    model: Annotated[
        str, typer.Argument(help="A release folder, a model name or a Hub repo (with latent statistics).")
    ],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="JSON report to write.")] = None,
    data_root: Annotated[str | None, typer.Option(help="Where the model's data lives.")] = None,
    seed: Annotated[int, typer.Option(help="Seed choosing the training examples of the directions.")] = 0,
) -> None:
    """Measure the editing tables of docs/editing.md: strength units, mean difference vs boundary at equal
    identity cost, conditional edits. Prints markdown; -o writes the JSON.

    Examples:
      dcvae-train edit-report fashion-mnist-32 -o reports/editing/fashion-mnist-32.json
    """
    from dcvae_tools import load_model
    from dcvae_tools.io_utils import atomic_write_text

    from .edit_report import edit_report, markdown

    loaded = load_model(model)
    report = edit_report(loaded, data_root, seed)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(output, json.dumps(report, indent=2) + "\n")
    typer.echo(markdown(report))


@app.command()
def curves(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN",
                                               help="Run folders with network-snapshots/ (network_snapshot_every).")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metric names.")] = (
        "recon_class_agreement_test,rfd_classifier,fd10k_classifier,recon_mse_test"
    ),
    output: Annotated[Path | None, typer.Option("-o", "--output", help="PNG figure to draw.")] = None,
    test_limit: Annotated[int | None, typer.Option(help="Evaluate on a fixed subset of the test split.")] = None,
    num_samples: Annotated[int | None, typer.Option(help="Samples for sampling FDs.")] = None,
) -> None:
    """Evaluate each run's network snapshots (new ones only; appended to RUN/curves.jsonl) and draw the curves.

    Examples:
      dcvae-train curves reports/runs/fashion-mnist-32 -o docs/figures/curves.png
      dcvae-train curves runs/dcvae runs/vae runs/vaegan --metrics rfd_classifier,fd10k_classifier -o curves.png
    Each run is one line, labelled with its folder's name.
    """
    from .curves import classifier_mismatch, evaluate_snapshots, plot_curves

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    table = {}
    for run in runs:
        if not (run / "network-snapshots").is_dir():
            if (run / "progressive_schedule.json").is_file():
                raise UserError(f"{run} is a progressive run, which keeps no network snapshots: measure its stages "
                                f"with `dcvae-train eval {run}/stages/<R>x<R> -o REPORT`")
            raise UserError(f"{run} has no network-snapshots/: train with --set network_snapshot_every=N")
        lines = evaluate_snapshots(run, names, test_limit=test_limit, num_samples=num_samples, show_progress=False)
        table[run.name] = lines
        for line in lines:
            typer.echo(f"{run.name} iteration {line['iteration']}: " + ("  ".join(
                f"{k} {v:.4g}" for k, v in line["metrics"].items()) or f"not measured ({line.get('error')})"))
    mismatch = classifier_mismatch(table)
    if mismatch:
        typer.echo(f"warning: {mismatch}", err=True)
    if output is not None:
        from .metrics import resolve_metric

        reported = [resolve_metric(n, num_samples=num_samples)[0] for n in names]  # fd10k -> fd2k with 2,000
        drawn = [n for n in dict.fromkeys(reported)
                 if any(n in line["metrics"] for lines in table.values() for line in lines)]
        plot_curves(table, drawn or reported, output)
        typer.echo(f"wrote {output}")


@app.command("curves-table")
def curves_table(
    series: Annotated[list[str], typer.Argument(
        metavar="SERIES",
        help="Runs to tabulate: RUN, a run continued in other folders as RUN+RUN2, named with LABEL=RUN+RUN2.")],
    metrics: Annotated[str, typer.Option(help="Comma-separated metric names.")] = (
        "fd10k_classifier,recon_class_agreement_test"
    ),
    since: Annotated[int | None, typer.Option(help="First iteration of the window (included).")] = None,
    until: Annotated[int | None, typer.Option(help="Last iteration of the window (included).")] = None,
) -> None:
    """Print measured snapshots as a markdown table, a row per iteration and each column's mean over the window.

    Reads RUN/curves.jsonl (what `dcvae-train curves` measured, under the paper's protocol); measures nothing.

    Examples:
      dcvae-train curves-table reports/runs/fashion-mnist-32 reports/runs/fashion-mnist-32-vaegan --since 40000
      dcvae-train curves-table arm=runs/a+runs/a-continued vaegan=runs/v+runs/v-continued --since 64000
    """
    from .curve_table import parse_series, series_lines, window_table
    from .curves import classifier_mismatch

    try:  # a bad series, a broken curves.jsonl line or an empty window: one line, no traceback
        parsed = [parse_series(text) for text in series]
        labels = [s.label for s in parsed]
        if len(set(labels)) < len(labels):
            raise ValueError(f"two series are labelled alike ({', '.join(labels)}): name them with LABEL=RUN")
        columns = {s.label: series_lines(s) for s in parsed}
        if mismatch := classifier_mismatch(columns):
            typer.echo(f"warning: {mismatch}", err=True)
        table = window_table(columns, [m.strip() for m in metrics.split(",") if m.strip()], since=since, until=until)
    except ValueError as err:
        raise UserError(str(err)) from None
    typer.echo(table)


def main() -> None:
    """Entry point: one-line errors for user mistakes, tracebacks with DCVAE_DEBUG=1."""
    from dcvae_tools.errors import DCVAEError

    from .options import OptionsError
    from .state_file import TrainingDivergedError, TrainingStateError

    try:
        app()
    except StoppedBySignal as stopped:  # die of the signal, as the process would have without the handler
        signal.signal(stopped.signum, signal.SIG_DFL)
        os.kill(os.getpid(), stopped.signum)
        raise SystemExit(128 + stopped.signum) from None  # where the signal could not end the process
    except (UserError, OptionsError, DCVAEError, TrainingStateError, TrainingDivergedError, FileNotFoundError,
            ModuleNotFoundError) as err:
        if os.environ.get("DCVAE_DEBUG") == "1":
            raise
        typer.echo(f"error: {err}", err=True)
        raise SystemExit(1) from None


def _keep_example_lines() -> None:
    """click rewraps each paragraph of a command's help; a paragraph after a ``\\b`` line keeps its lines, so
    every ``Examples:`` block gets one (the commands' docstrings stay readable as they are)."""
    for command in app.registered_commands:
        doc = command.callback.__doc__ if command.callback is not None else None
        if doc:
            command.callback.__doc__ = re.sub(r"(?m)^([ \t]*)Examples:$", "\\1\\b\n\\1Examples:", doc)


_keep_example_lines()


if __name__ == "__main__":
    main()
