"""Does averaging a run's decoder over several network snapshots sample better than the last snapshot alone?

A test of whether a longer decoder EMA could lower DC-VAE's sample FD without more training: if the decoder's
weights were noisy around a better point, their mean over snapshots would show it. Writes a release folder
whose encoder is the last snapshot's and whose decoder is the mean of the given snapshots' decoders
(batch-norm statistics averaged too), to be measured with `dcvae-train eval`:

    S=reports/runs/fashion-mnist-32/network-snapshots
    python reports/experiments/average_decoders.py /tmp/avg-36-40 $S/iteration-0036000 $S/iteration-0040000
    dcvae-train eval /tmp/avg-36-40 --metrics fd10k_classifier,sample_class_entropy10k,rfd_classifier \\
        -o reports/experiments/decoder-average-fashion-mnist-32-36000-40000.json
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def average_decoders(output: Path, snapshots: list[Path]) -> Path:
    """Write ``output``: the last snapshot's release folder with the mean decoder of all ``snapshots``."""
    states = [load_file(folder / "model.safetensors") for folder in snapshots]
    averaged = dict(states[-1])
    for key, value in averaged.items():
        if key.startswith("decoder.") and value.is_floating_point():
            averaged[key] = torch.stack([state[key] for state in states]).mean(0)
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(snapshots[-1], output)
    save_file(averaged, output / "model.safetensors", metadata={"format": "pt"})
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="release folder to write (replaced if it exists)")
    parser.add_argument("snapshots", type=Path, nargs="+", help="network snapshot folders, the last one's encoder kept")
    args = parser.parse_args()
    print(f"wrote {average_decoders(args.output, args.snapshots)}")


if __name__ == "__main__":
    main()
