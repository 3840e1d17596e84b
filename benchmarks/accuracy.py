"""What the fast path and bfloat16 cost in accuracy, on real images.

For each model and image set, compares with the plain float32 networks (as trained):

* ``fast float32``: the folded fast networks in float32 (should differ by float rounding only, ~1e-6);
* ``fast bfloat16``: folded weights converted to bfloat16, activations in bfloat16 (the library's bfloat16);
* ``autocast bfloat16``: the plain networks under ``torch.autocast`` (the path without the fast networks).

Figures: the largest and mean absolute difference of the latents (posterior means) and of the reconstructed
images (encode -> decode, pixels on the [-1, 1] scale), and of images decoded from the same float32 latents;
``allclose 1e-5``: latents and reconstructions pass ``torch.allclose(rtol=1e-5, atol=1e-5)``; ``recon max vs
fp64``: the largest pixel difference of each path's reconstruction to the plain networks run in float64 (the
plain float32 row shows how far float32 arithmetic itself is from exact).

Images: Fashion-MNIST test images (the default model's data; repeated to 3 channels for the paper-width
model) and scikit-image's sample photographs resized to 32x32.

    python -m benchmarks.accuracy
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

import torch

from benchmarks import common


def compare(model: Any, x: torch.Tensor) -> list[dict[str, Any]]:
    """Differences of each precision/path to the plain float32 networks, on images ``x``."""
    from dcvae_tools.fast import optimize_for_inference

    optimize_for_inference(model, fast=False, micro_batch=None, dtype="float32")
    z_ref = model.encode(x)
    rec_ref = model.decode(z_ref)
    # float64 ground truth of the plain networks: how far float32 itself is from exact, for scale
    encoder64, decoder64 = copy.deepcopy(model.encoder).double(), copy.deepcopy(model.decoder).double()
    with torch.inference_mode():
        z64 = encoder64(model.images_to_tensor(x).double())[0]
        rec64 = decoder64(z64)
    rows = [{
        "path": "plain float32",
        "latent_max_abs": 0.0, "latent_max_rel": 0.0, "recon_pixel_mean_abs": 0.0, "recon_pixel_max_abs": 0.0,
        "decode_pixel_mean_abs": 0.0, "decode_pixel_max_abs": 0.0, "allclose_1e-5": True,
        "recon_max_abs_vs_float64": (rec_ref.double() - rec64).abs().max().item(),
    }]
    for name, fast, dtype in (("fast float32", True, "float32"), ("fast bfloat16", True, "bfloat16"),
                              ("autocast bfloat16", False, "bfloat16")):
        optimize_for_inference(model, fast=fast, dtype=dtype)
        z = model.encode(x)
        rec = model.decode(z)
        dec = model.decode(z_ref)
        rows.append({
            "path": name,
            "latent_max_abs": (z - z_ref).abs().max().item(),
            "latent_max_rel": ((z - z_ref).abs().max() / z_ref.abs().max()).item(),
            "recon_pixel_mean_abs": (rec - rec_ref).abs().mean().item(),
            "recon_pixel_max_abs": (rec - rec_ref).abs().max().item(),
            "decode_pixel_mean_abs": (dec - rec_ref).abs().mean().item(),
            "decode_pixel_max_abs": (dec - rec_ref).abs().max().item(),
            "allclose_1e-5": bool(torch.allclose(z, z_ref, rtol=1e-5, atol=1e-5)
                                  and torch.allclose(rec, rec_ref, rtol=1e-5, atol=1e-5)),
            "recon_max_abs_vs_float64": (rec.double() - rec64).abs().max().item(),
        })
    optimize_for_inference(model, dtype="float32")
    return rows


def measure(model_path: str | None = None, n: int = 1000) -> dict[str, Any]:
    torch.manual_seed(0)
    sets: list[dict[str, Any]] = []
    default, description = common.default_model(model_path)
    c = default.config
    try:
        x = common.real_inputs(n, c.channels, c.image_size, c.content_size)
        sets.append({"model": "default", "model_source": description,
                     "images": f"{len(x)} Fashion-MNIST test images", "rows": compare(default, x)})
    except FileNotFoundError as err:
        sets.append({"model": "default", "skipped": str(err).splitlines()[0]})
    paper = common.random_model(common.PAPER_CONFIG)
    try:
        x = common.real_inputs(min(n, 256), 3)
        sets.append({"model": "paper", "model_source": "random weights",
                     "images": f"{len(x)} Fashion-MNIST test images, grey repeated to RGB, resized to 32x32",
                     "rows": compare(paper, x)})
    except FileNotFoundError as err:
        sets.append({"model": "paper", "skipped": str(err).splitlines()[0]})
    photos, what = common.photo_inputs()
    if photos is not None:
        sets.append({"model": "paper", "model_source": "random weights", "images": what,
                     "rows": compare(paper, photos)})
    else:
        sets.append({"model": "paper", "skipped": what})
    return {"sets": sets}


COLUMNS = [
    ("path", "path", ""), ("latent_max_abs", "latent max", ".2e"), ("latent_max_rel", "latent max rel", ".2e"),
    ("recon_pixel_mean_abs", "recon mean", ".2e"), ("recon_pixel_max_abs", "recon max", ".2e"),
    ("decode_pixel_mean_abs", "decode mean", ".2e"), ("decode_pixel_max_abs", "decode max", ".2e"),
    ("allclose_1e-5", "allclose 1e-5", ""), ("recon_max_abs_vs_float64", "recon max vs fp64", ".1e"),
]


def print_report(result: dict[str, Any]) -> None:
    for s in result["sets"]:
        if "skipped" in s:
            print(f"{s['model']}: skipped ({s['skipped']})")
            continue
        print(f"{s['model']} model ({s['model_source']}) on {s['images']}; differences to plain float32, "
              "pixels on [-1, 1]:")
        print(common.format_table(s["rows"], COLUMNS))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="release folder or training run folder for the default rows")
    parser.add_argument("-n", type=int, default=1000, help="Fashion-MNIST test images to use")
    args = parser.parse_args(argv)
    info = common.machine_info()
    print(common.header("Accuracy of the fast path and of bfloat16 against plain float32", info))
    result = {"machine": info, **measure(args.model, args.n)}
    print_report(result)
    path = common.write_json("accuracy", result)
    print(f"wrote {path}")
    return result


if __name__ == "__main__":
    main()
