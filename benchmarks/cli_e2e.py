"""End-to-end wall time of ``dcvae encode`` and ``dcvae edit`` on one image and on a folder of 1,000 images.

The images are Fashion-MNIST test images written as PNG files to a temporary folder; the model is the default
model (or ``--model``; a random model with the default config when none is bundled), saved in the release
format with one attribute, and loaded with ``--offline``. Each one-image command runs several times,
interleaved with ``python -c "import torch"`` (the floor for any command that computes), and the median is
reported; the folder commands run twice.

    python -m benchmarks.cli_e2e
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import common
from benchmarks.startup import dcvae_command, wall_time


def prepare(folder: Path, model_path: str | None, n_images: int) -> tuple[Path | None, Path, Path, str]:
    """Write one PNG and a folder of ``n_images`` PNGs, and the model (with an attribute) unless it is the
    bundled default model (returned as None: the commands then run without ``-m``, as a user would)."""
    import torch
    from PIL import Image

    from dcvae_tools.model import AttributeVector
    from dcvae_tools.release import save_pretrained

    model, description = common.default_model(model_path)
    bundled = model_path is None and getattr(model, "source", None) is not None
    if not model.attributes:
        direction = torch.randn(model.latent_dim, generator=torch.Generator().manual_seed(0))
        model.attributes = {"bench": AttributeVector("bench", direction, 20, 20)}
    model_dir = None if bundled else save_pretrained(model, folder / "model")  # None: use the bundled default
    images = common.fashion_mnist_test(n_images)
    one = folder / "one.png"
    Image.fromarray(images[0]).save(one)
    many = folder / "images"
    many.mkdir()
    for i, array in enumerate(images):
        Image.fromarray(array).save(many / f"{i:05d}.png")
    attribute = next(iter(model.attributes))
    return model_dir, one, many, f"{attribute}=1.5 ({description})"


def measure(model_path: str | None = None, repeats: int = 5, n_images: int = 1000) -> dict[str, Any]:
    dcvae = dcvae_command()
    with tempfile.TemporaryDirectory(prefix="dcvae-bench-") as tmp_name:
        tmp = Path(tmp_name)
        model_dir, one, many, attr_note = prepare(tmp, model_path, n_images)
        attr = attr_note.split(" ")[0]
        common_opts = [*(["-m", str(model_dir)] if model_dir is not None else []), "--offline", "-q"]
        counter = iter(range(10**6))

        def out(kind: str) -> str:
            return str(tmp / f"out-{kind}-{next(counter)}")

        one_image = {
            "python -c 'import torch'": lambda: [sys.executable, "-c", "import torch"],
            "dcvae encode (1 image)": lambda: [*dcvae, "encode", str(one), "-o", out("z") + ".safetensors",
                                               *common_opts],
            "dcvae edit (1 image)": lambda: [*dcvae, "edit", str(one), "-a", attr, "-o", out("e"), *common_opts],
        }
        folder = {
            f"dcvae encode ({n_images} images)": lambda: [*dcvae, "encode", str(many), "-o",
                                                          out("z") + ".safetensors", *common_opts],
            f"dcvae edit ({n_images} images)": lambda: [*dcvae, "edit", str(many), "-a", attr, "-o", out("e"),
                                                        *common_opts],
            f"dcvae encode ({n_images} images, bfloat16)": lambda: [*dcvae, "encode", str(many), "-o",
                                                                    out("z") + ".safetensors", "--dtype",
                                                                    "bfloat16", *common_opts],
            f"dcvae edit ({n_images} images, bfloat16)": lambda: [*dcvae, "edit", str(many), "-a", attr, "-o",
                                                                  out("e"), "--dtype", "bfloat16", *common_opts],
        }
        for make in one_image.values():  # warm the file cache once
            wall_time(make())
        times: dict[str, list[float]] = {name: [] for name in (*one_image, *folder)}
        for _ in range(repeats):
            for name, make in one_image.items():
                times[name].append(wall_time(make()))
        for _ in range(2):
            for name, make in folder.items():
                times[name].append(wall_time(make()))
    rows = []
    for name, t in times.items():
        row = {"command": name, "median_s": statistics.median(t), "best_s": min(t), "reps": len(t)}
        if f"({n_images} images" in name:
            row["images_per_s"] = n_images / row["median_s"]
        rows.append(row)
    torch_s = statistics.median(times["python -c 'import torch'"])
    for row in rows:
        row["x_import_torch"] = row["median_s"] / torch_s
    return {"rows": rows, "model": attr_note, "images": "Fashion-MNIST test images as 28x28 PNG files"}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="release folder or training run folder")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("-n", type=int, default=1000, help="images in the folder")
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("dcvae CLI end to end (wall time, fresh process each)", info))
    result = {"machine": info, **measure(args.model, args.repeats, args.n)}
    print(f"model: {result['model']}")
    print(common.format_table(result["rows"], [
        ("command", "command", ""), ("median_s", "median s", ".3f"), ("best_s", "best s", ".3f"),
        ("x_import_torch", "x import torch", ".2f"), ("images_per_s", "img/s", ".0f"), ("reps", "runs", "d"),
    ]))
    path = common.write_json("cli_e2e", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
