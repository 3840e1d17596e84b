"""Dataset-scale encoding: any number of images -> a folder of latents shards, streamed and resumable.

:func:`encode_files` (and :func:`encode_folder`) read and convert the images in DataLoader worker processes
(:mod:`dcvae_tools.encoding.reading`: the same values as :func:`dcvae_tools.images.convert_image` gives
everywhere else, with a quicker path for model-ready PNG files), encode them batch by batch and
write ``OUT/shard-00000.safetensors``, ``shard-00001.safetensors``, ... plus ``OUT/index.json``:

* shard ``k`` covers input files ``k * shard_size`` to ``(k + 1) * shard_size - 1`` and holds tensor
  ``latents`` [rows, D] float32 with the metadata of a ``dcvae encode`` latents file (``files``, ``model``,
  ``weights_sha256``, ``sample``, ``seed``, ``skipped``) plus where it sits (``shard``, ``first_file``,
  ``num_files``) and the settings of the run (``encoding``). ``rows`` equals the files covered unless
  ``skip_bad`` left some out; the last shard may be shorter. Rows in shard order are the single-file
  ``dcvae encode`` rows: bit for bit when ``shard_size`` is a multiple of the batch size (the defaults, 4096
  and 64, are), else up to float rounding (the CPU kernels can differ in the last bit between batch sizes).
* ``index.json`` (written atomically after every shard) records the format, the model (name, revision,
  config, weights sha256), the settings, every finished shard with its rows and sha256, the total rows,
  the skipped files, ``complete``, and the working folder when any input path is relative.

Memory stays at one shard plus a batch. A re-run of the same command keeps the finished shards (each
checked against the index's sha256, or its header when the index does not list it yet, and against its
images' sizes and modification times as they were before the shard's images were read, recorded in the
shard as ``files_fingerprint``: images copied without their times, ``cp`` without ``-p``, are encoded
again) and encodes the rest; a re-run with other settings is refused. Under ``torchrun`` (``WORLD_SIZE``
> 1) every process encodes a contiguous range of shards and rank 0 writes the full index after all are done,
so the folder is the same as a single process writes. With ``sample=True`` shard ``k`` draws its noise from a generator
seeded from (seed, k), so sampled folders do not depend on how many processes wrote them (they differ
from a single-file ``--sample`` encoding, which draws all noise at once).

The format and its index are in :mod:`dcvae_tools.encoding.index`, the latents readers in
:mod:`dcvae_tools.encoding.shards`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from ..errors import DCVAEError, ImageError
from ..heap import keep_freed_memory
from ..images import expand_image_paths
from ..io_utils import atomic_write, atomic_write_text, sha256_file
from .distributed import (
    all_processes,
    gather_records,
    my_shards,
    process_group,
    rank_and_world,
    shared_seed,
    whole_number_variable,
)
from .index import DEFAULT_SHARD_SIZE, FORMAT, FORMAT_VERSION, INDEX_NAME, load_index_file, shard_header, shard_name
from .reading import ImageBatch, ImageFiles, ShardBatches
from .shards import stable_safetensors_bytes

if TYPE_CHECKING:
    from ..model import DCVAE

__all__ = ["EncodeResult", "encode_files", "encode_folder"]

logger = logging.getLogger("dcvae_tools")

ProgressFactory = Callable[[int, str], AbstractContextManager[Callable[[int], None]]]
"""``progress(total, description)``: a context manager yielding ``advance(n)`` (e.g. the CLI's ``Output.progress``)."""


@dataclass
class EncodeResult:
    """What :func:`encode_files` did: the folder, its totals, and the shards this process wrote or kept."""

    out_dir: Path
    rows: int
    shards: int
    written: int
    reused: int
    seed: int | None
    skipped: list[tuple[Path, str]] = field(default_factory=list)


# ---------------------------------------------------------------------------- the plan and its identity


@dataclass
class _Plan:
    """Everything fixed before any work: files, shard layout, the settings and the identity they make."""

    files: list[Path]
    shard_size: int
    sample: bool
    seed: int | None
    skip_bad: bool
    identity: dict[str, Any]
    settings: dict[str, Any]
    # where relative source paths start from: decode uses it to protect the originals from any folder
    working_dir: str = ""

    @property
    def num_shards(self) -> int:
        return -(-len(self.files) // self.shard_size)

    def shard_range(self, shard: int) -> range:
        """The indices of the files shard ``shard`` covers."""
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, len(self.files)))


_CONFIG_KEYS = ("architecture", "architecture_args", "image_size", "channels", "content_size", "latent_dim",
                "pixel_range", "preset")


def _model_summary(model: DCVAE) -> dict[str, Any]:
    source = getattr(model, "source", None)
    return {
        "name": source.recorded_name if source is not None else "model",
        "revision": getattr(source, "revision", None),
        "config": {k: v for k, v in model.config.to_dict().items() if k in _CONFIG_KEYS},
        "weights_sha256": model.weights_sha256(),
    }


def _files_sha256(files: Sequence[Path]) -> str:
    return hashlib.sha256("\n".join(str(f) for f in files).encode()).hexdigest()


def _files_fingerprint(files: Sequence[Path]) -> str:
    """sha256 over each file's path, size and modification time, so a re-run encodes again a shard whose images
    were replaced since (the index's identity hashes the paths only, to keep a run resumable)."""
    digest = hashlib.sha256()
    for file in files:
        try:
            stat = os.stat(file)
            digest.update(f"{file}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{file}\tmissing\n".encode())
    return digest.hexdigest()


def _shard_files(plan: _Plan, shard: int) -> list[Path]:
    span = plan.shard_range(shard)
    return list(plan.files[span.start : span.stop])


def _identity(index: dict[str, Any]) -> dict[str, Any]:
    """The fields of an index that must match for a run to continue it."""
    settings = index.get("settings", {})
    return {
        "format_version": index.get("format_version"),
        "model": index.get("model"),
        "latent_dim": index.get("latent_dim"),
        "shard_size": index.get("shard_size"),
        "num_files": index.get("num_files"),
        "files_sha256": index.get("files_sha256"),
        "sample": settings.get("sample"),
        "seed": settings.get("seed"),
        "dtype": settings.get("dtype"),
    }


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: OLD -> NEW`` for every field that differs between two identities."""
    a, b = _flatten(old), _flatten(new)
    return [f"{key}: {a.get(key)!r} -> {b.get(key)!r}" for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)]


def _without_model_name(identity: dict[str, Any]) -> dict[str, Any]:
    """An identity as compared for a resume: the model is its config and weights' hash, whatever it was called
    (a folder moved or named another way, or a name recorded by an older version, is the same model)."""
    model = identity.get("model")
    if not isinstance(model, dict):
        return identity
    return {**identity, "model": {k: v for k, v in model.items() if k not in ("name", "revision")}}


def _refuse(out_dir: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    changes = _differences(_without_model_name(old), _without_model_name(new))
    if changes:
        same_count = old.get("num_files") == new.get("num_files")
        hint = " (the same number of files under other names or in another order: relative paths from another " \
            "working folder?)" if same_count and old.get("files_sha256") != new.get("files_sha256") else ""
        raise DCVAEError(
            f"{out_dir} holds an encoding made with other settings ({'; '.join(changes)}){hint}; re-run with the "
            "same model, images and options to continue it, or give another output folder"
        )


def _refuse_foreign_shards(out_dir: Path, plan: _Plan) -> None:
    """Refuse, before anything is written, a folder without an index whose shard-named files are not shards this
    tool wrote: they are someone's files, and encoding would replace them."""
    for shard in range(plan.num_shards):
        path = out_dir / shard_name(shard)
        if not path.exists():
            continue
        header = shard_header(path) if path.is_file() else None
        if header is None or "encoding" not in header[0]:
            raise DCVAEError(
                f"{path} is not a latents shard written by `dcvae encode` and {out_dir} has no {INDEX_NAME}, so "
                "encoding would replace it; move it away or give another output folder"
            )


def _refuse_other_working_dir(out_dir: Path, existing: dict[str, Any], plan: _Plan) -> None:
    """Refuse to continue an encoding of relative paths from another working folder: the same text may name
    other files there (an index from before working folders were recorded is taken as it is)."""
    before = existing.get("working_dir")
    if isinstance(before, str) and before and plan.working_dir and before != plan.working_dir:
        raise DCVAEError(
            f"{out_dir} holds an encoding of relative paths made from {before}, but this run is in "
            f"{plan.working_dir}: the same paths may name other files here; run it from {before} to continue it, "
            "or give another output folder"
        )


def _make_plan(model: DCVAE, files: Sequence[Path], shard_size: int, sample: bool, seed: int | None,
               skip_bad: bool, batch_size: int, num_workers: int, world: int) -> _Plan:
    files = [f if isinstance(f, Path) else Path(f) for f in files]
    settings = {
        "sample": sample,
        "seed": seed,
        "dtype": str(model.compute_dtype).removeprefix("torch."),
        "skip_bad": skip_bad,
        "batch_size": batch_size,
        "num_workers": num_workers,
        "world_size": world,
    }
    index = {
        "format_version": FORMAT_VERSION,
        "model": _model_summary(model),
        "latent_dim": model.latent_dim,
        "shard_size": shard_size,
        "num_files": len(files),
        "files_sha256": _files_sha256(files),
        "settings": settings,
    }
    # recorded only where it means something: relative paths (it names the user's folders, in a shareable file)
    working_dir = os.getcwd() if any(not f.is_absolute() for f in files) else ""
    return _Plan(files, shard_size, sample, seed, skip_bad, _identity(index), settings, working_dir)


# ---------------------------------------------------------------------------- the index


def _index_data(plan: _Plan, records: dict[int, dict[str, Any]], complete: bool) -> dict[str, Any]:
    identity = plan.identity
    shards = [records[k] for k in sorted(records)]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "complete": complete,
        "model": identity["model"],
        "latent_dim": identity["latent_dim"],
        "shard_size": plan.shard_size,
        "num_files": len(plan.files),
        "files_sha256": identity["files_sha256"],
        **({"working_dir": plan.working_dir} if plan.working_dir else {}),
        "num_shards": plan.num_shards,
        "total_rows": sum(r["rows"] for r in shards),
        "shards": [{k: v for k, v in r.items() if k != "skipped"} for r in shards],
        "skipped": [s for r in shards for s in r["skipped"]],
        "settings": plan.settings,
    }


def _write_index(out_dir: Path, plan: _Plan, records: dict[int, dict[str, Any]], complete: bool) -> None:
    text = json.dumps(_index_data(plan, records, complete), indent=1) + "\n"
    atomic_write_text(out_dir / INDEX_NAME, text)


# ---------------------------------------------------------------------------- shards on disk


def _record_from_file(out_dir: Path, shard: int, plan: _Plan, expected_sha: str | None) -> dict[str, Any] | None:
    """The index record of a finished shard on disk, or None when it is missing, unreadable or corrupt.

    A shard written by a run with other settings is refused (it would mix outputs).
    """
    path = out_dir / shard_name(shard)
    if not path.is_file():
        return None
    sha = sha256_file(path)
    if expected_sha is not None and sha != expected_sha:
        logger.warning(f"{path}: sha256 differs from the index; encoding this shard again")
        return None
    header = shard_header(path)
    if header is None:
        logger.warning(f"{path}: not a readable shard; encoding it again")
        return None
    metadata, shape = header
    try:
        encoding, skipped = json.loads(metadata.get("encoding", "{}")), json.loads(metadata.get("skipped", "[]"))
    except ValueError:
        logger.warning(f"{path}: its metadata is not valid JSON; encoding this shard again")
        return None
    _refuse(out_dir, encoding, plan.identity)
    fingerprint = metadata.get("files_fingerprint")  # absent from shards written before it was recorded
    if fingerprint is not None and fingerprint != _files_fingerprint(_shard_files(plan, shard)):
        logger.warning(f"{path}: some of its {len(plan.shard_range(shard))} images changed (size or modification "
                       "time) since it was written; encoding this shard again")
        return None
    if skipped and not plan.skip_bad:  # an earlier --skip-bad run left files out; this run must read them all
        logger.warning(f"{path}: an earlier --skip-bad run left {len(skipped)} file(s) out (first: "
                       f"{skipped[0].get('file')}); encoding this shard again")
        return None
    return _record(plan, shard, shape[0], sha, skipped)


def _carried_records(existing: dict[str, Any] | None, plan: _Plan, mine: range) -> dict[int, dict[str, Any]]:
    """The earlier index's records of the shards other torchrun processes own (identity already checked).

    Rank 0 rewrites the index after each of its shards; carrying these keeps their sha256 there, so a run
    killed midway still verifies those shards in full when it is resumed.
    """
    if existing is None:
        return {}
    position = {str(f): i for i, f in enumerate(plan.files)}
    skipped: dict[int, list[dict[str, str]]] = {}
    for item in existing.get("skipped", []):
        if str(item.get("file")) in position:
            skipped.setdefault(position[str(item["file"])] // plan.shard_size, []).append(item)
    return {
        int(r["shard"]): {**r, "skipped": skipped.get(int(r["shard"]), [])}
        for r in existing.get("shards", [])
        if int(r["shard"]) not in mine
    }


def _remove_stale_temporaries(out_dir: Path, shards: Sequence[int], index_too: bool) -> None:
    """Delete the hidden temporary files a killed run left behind: of this process's shards (and the index)."""
    names = {shard_name(k) for k in shards} | ({INDEX_NAME} if index_too else set())
    with os.scandir(out_dir) as entries:
        for entry in entries:
            name = entry.name
            if name.startswith(".") and ".tmp-" in name and name[1 : name.index(".tmp-")] in names:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def _record(plan: _Plan, shard: int, rows: int, sha: str, skipped: list[dict[str, str]]) -> dict[str, Any]:
    span = plan.shard_range(shard)
    return {
        "file": shard_name(shard),
        "shard": shard,
        "first_file": span.start,
        "num_files": len(span),
        "rows": rows,
        "sha256": sha,
        "skipped": skipped,
    }


def _shard_seed(seed: int, shard: int) -> int:
    """The noise seed of one shard of a ``sample=True`` run."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{shard}".encode()).digest()[:8], "little") & (2**63 - 1)


def _write_shard(out_dir: Path, plan: _Plan, shard: int, model: DCVAE, parts: _ShardParts,
                 fingerprint: str) -> dict[str, Any]:
    """Write one shard atomically and return its index record (``fingerprint``: its files' before reading)."""
    latents = parts.latents(model, plan, shard)
    skipped = [{"file": str(p), "reason": r} for p, r in parts.skipped]
    metadata = {
        "format": "pt",
        "files": json.dumps([str(p) for p in parts.paths]),
        "model": plan.identity["model"]["name"],
        "weights_sha256": plan.identity["model"]["weights_sha256"],
        "sample": json.dumps(plan.sample),
        "shard": str(shard),
        "first_file": str(plan.shard_range(shard).start),
        "num_files": str(len(plan.shard_range(shard))),
        "encoding": json.dumps(plan.identity),
        "files_fingerprint": fingerprint,
    }
    if plan.seed is not None and plan.sample:
        metadata["seed"] = str(plan.seed)
    if plan.identity["model"]["revision"]:
        metadata["revision"] = str(plan.identity["model"]["revision"])
    if plan.skip_bad:
        metadata["skipped"] = json.dumps(skipped)
    data = stable_safetensors_bytes(latents, metadata)
    with atomic_write(out_dir / shard_name(shard)) as tmp:
        tmp.write_bytes(data)
    return _record(plan, shard, len(latents), hashlib.sha256(data).hexdigest(), skipped)


# ---------------------------------------------------------------------------- reading and encoding images


@dataclass
class _ShardParts:
    """The encoded batches of the shard being filled."""

    paths: list[Path] = field(default_factory=list)
    mus: list[torch.Tensor] = field(default_factory=list)
    logvars: list[torch.Tensor] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seen: int = 0

    def latents(self, model: DCVAE, plan: _Plan, shard: int) -> torch.Tensor:
        """The shard's rows: posterior means, or samples with the shard's own seed."""
        if not self.mus:
            return torch.empty(0, model.latent_dim)
        mu = torch.cat(self.mus)
        if not plan.sample:
            return mu
        assert plan.seed is not None
        return model.sample_posterior(mu, torch.cat(self.logvars), _shard_seed(plan.seed, shard))


def _encode_batch(model: DCVAE, plan: _Plan, batch: ImageBatch, parts: _ShardParts) -> None:
    """Encode one batch into ``parts`` (bad files: an error, or skipped with skip_bad)."""
    failed = dict(batch.errors)
    for i, error in batch.errors:
        if not plan.skip_bad:
            raise ImageError(error)
        path = plan.files[i]
        parts.skipped.append((path, error.removeprefix(f"{path}: ")))
    for _, note in batch.notes:
        logger.info(note)
    if batch.images is None:
        return
    mu, logvar = model.posterior(batch.images, batch_size=len(batch.images))
    parts.paths.extend(plan.files[i] for i in batch.indices if i not in failed)
    parts.mus.append(mu.float().cpu())
    if plan.sample:
        parts.logvars.append(logvar.float().cpu())


def _default_workers() -> int:
    # The encoder itself wants two cores: a worker that takes one of them slows the whole run down
    # (measured on 2 cores: 3,100 images/s reading in-process, 2,700 with one worker), so workers only
    # come from the cores beyond two per process.
    local_world = whole_number_variable("LOCAL_WORLD_SIZE", "1")
    return max(0, min(4, (os.cpu_count() or 1) // max(1, local_world) - 2))


def _encode_shards(model: DCVAE, plan: _Plan, out_dir: Path, todo: Sequence[int], batch_size: int,
                   num_workers: int, on_shard: Callable[[int, dict[str, Any]], None],
                   advance: Callable[[int], None]) -> None:
    """Encode the shards ``todo`` in order, writing each as soon as it is full."""
    # taken before any file is read: a file replaced while the run reads it then makes the next run encode that
    # shard again, instead of keeping its stale latents
    fingerprints = {shard: _files_fingerprint(_shard_files(plan, shard)) for shard in todo}
    config = model.config
    dataset = ImageFiles(plan.files, config.image_size, config.channels, config.content_size)
    loader = DataLoader(dataset, batch_sampler=ShardBatches(plan, todo, batch_size),
                        num_workers=num_workers, collate_fn=dataset.collate)
    parts = _ShardParts()
    batches = iter(loader)  # starts the workers, if any, which need none of the next line's heap settings
    keep_freed_memory()
    for batch in batches:
        shard = batch.indices[0] // plan.shard_size
        _encode_batch(model, plan, batch, parts)
        parts.seen += len(batch.indices)
        advance(len(batch.indices))
        if parts.seen == len(plan.shard_range(shard)):  # the shard is full: write it now
            on_shard(shard, _write_shard(out_dir, plan, shard, model, parts, fingerprints[shard]))
            parts = _ShardParts()


# ---------------------------------------------------------------------------- torchrun


# ---------------------------------------------------------------------------- the entry points


def _pick_seed(plan_seed: int | None, sample: bool, existing: dict[str, Any] | None) -> int | None:
    if not sample:
        return None
    if plan_seed is not None:
        return plan_seed
    if existing is not None and existing.get("settings", {}).get("seed") is not None:
        return int(existing["settings"]["seed"])  # a re-run without --seed continues with the recorded seed
    return secrets.randbelow(2**31)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DCVAEError(f"{out_dir} exists and is not a folder; give the output folder another name")
    out_dir.mkdir(parents=True, exist_ok=True)


def encode_files(
    model: DCVAE,
    files: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int | None = None,
    num_workers: int | None = None,
    sample: bool = False,
    seed: int | None = None,
    skip_bad: bool = False,
    progress: ProgressFactory | None = None,
) -> EncodeResult:
    """Encode image files to a folder of latents shards (see the module docstring for the format).

    Args:
        model: the model; under torchrun, each process's own (on its own GPU with CUDA).
        files: image files, in the order of the rows.
        out_dir: the output folder; an unfinished one from the same command is continued.
        shard_size: input files per shard.
        batch_size: images per forward pass (default ``model.batch_size``); does not change the result.
        num_workers: DataLoader worker processes reading the images (default: up to 4, from the cores
            beyond two per process; 0 reads in this process).
        sample: write posterior samples (seeded per shard) instead of the means.
        seed: the sampling seed (random, and recorded, when None).
        skip_bad: leave unreadable images out (listed in the index) instead of stopping at the first.
        progress: ``progress(total, description)`` giving ``advance(n)``; shown by rank 0 only.

    On Linux this asks glibc to keep freed memory in the process's heap from then on (:mod:`dcvae_tools.heap`):
    reading files between batches otherwise makes the encoder fault its activations back in at every batch.

    Raises:
        ImageError: an unreadable image without ``skip_bad``. DCVAEError: ``out_dir`` holds an encoding
        made with other settings (the message lists them), or another torchrun process failed.
    """
    if shard_size < 1:
        raise DCVAEError(f"shard_size must be at least 1, got {shard_size}")
    out = Path(out_dir)
    rank, world = rank_and_world()
    batch = batch_size or model.batch_size
    workers = _default_workers() if num_workers is None else num_workers
    _check_out_dir(out)
    existing = load_index_file(out)
    with process_group(model, world):
        chosen = shared_seed(_pick_seed(seed, sample, existing), world)
        plan = _make_plan(model, files, shard_size, sample, chosen, skip_bad, batch, workers, world)
        _check_same_plan(plan, world)
        if existing is not None:
            _refuse(out, _identity(existing), plan.identity)
            _refuse_other_working_dir(out, existing, plan)
        else:
            _refuse_foreign_shards(out, plan)
        records: dict[int, dict[str, Any]] = {}
        failed = False
        try:
            written = _run_rank(model, plan, out, rank, world, existing, records, batch, workers, progress)
        except BaseException:
            failed = True
            with contextlib.suppress(BaseException):
                gather_records(model, records, failed, world)
            raise
        everything = gather_records(model, records, failed, world)
        if rank == 0:
            _write_index(out, plan, everything, complete=True)
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
    skipped = [(Path(s["file"]), s["reason"]) for k in sorted(everything) for s in everything[k]["skipped"]]
    rows = sum(r["rows"] for r in everything.values())
    return EncodeResult(out, rows, plan.num_shards, written, len(records) - written, plan.seed, skipped)


def _check_same_plan(plan: _Plan, world: int) -> None:
    """Under torchrun, refuse (in every process) to start when the processes see other files or models."""
    identities = all_processes(plan.identity, world)
    differing = [f"process {rank}: {', '.join(_differences(identities[0], other))}"
                 for rank, other in enumerate(identities) if other != identities[0]]
    if differing:
        raise DCVAEError(
            f"the torchrun processes do not agree on what to encode (against process 0: {'; '.join(differing)}); "
            "give every process the same model and the same images (absolute paths, a folder that does not "
            "change while the run starts)"
        )


def _run_rank(model: DCVAE, plan: _Plan, out: Path, rank: int, world: int, existing: dict[str, Any] | None,
              records: dict[int, dict[str, Any]], batch: int, workers: int,
              progress: ProgressFactory | None) -> int:
    """Keep this process's finished shards, encode the others; return how many were written."""
    mine = my_shards(plan.num_shards, rank, world)
    _remove_stale_temporaries(out, mine, index_too=rank == 0)
    known = {r["shard"]: r.get("sha256") for r in (existing or {}).get("shards", [])}
    for shard in mine:
        record = _record_from_file(out, shard, plan, known.get(shard))
        if record is not None:
            records[shard] = record
    others = _carried_records(existing, plan, mine) if rank == 0 else {}
    if rank == 0:
        _write_index(out, plan, {**others, **records}, complete=False)
    todo = [s for s in mine if s not in records]

    def finished(shard: int, record: dict[str, Any]) -> None:
        records[shard] = record
        if rank == 0:
            _write_index(out, plan, {**others, **records}, complete=False)

    total = sum(len(plan.shard_range(s)) for s in todo)
    bar = progress(total, "encoding") if progress is not None and rank == 0 else contextlib.nullcontext(_ignore)
    with bar as advance:
        _encode_shards(model, plan, out, todo, batch, workers, finished, advance)
    return len(todo)


def _ignore(n: int = 1) -> None:
    """An ``advance`` that shows nothing."""


def encode_folder(
    model: DCVAE,
    folder: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    recursive: bool = False,
    **options: Any,
) -> EncodeResult:
    """:func:`encode_files` over the images in ``folder`` (sorted; with ``recursive`` also in its subfolders)."""
    return encode_files(model, expand_image_paths([folder], recursive=recursive), out_dir, **options)


