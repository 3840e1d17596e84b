"""Average the encoders of several network snapshots that share one decoder (an encoder refit's snapshots).

An ``encoder_only`` run fits the encoder to a fixed decoder, so its snapshots differ in the encoder alone; their
uniform weight average is a Polyak average of the refit's last stretch, which smooths the noise of single Adam
iterates. Writes a release-format folder with the averaged encoder and the shared decoder:

    python reports/experiments/encoder_average.py RUN/network-snapshots/iteration-00{84,85,86}000 -o OUT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from dcvae_tools import load_model, save_pretrained


def average_encoders(folders: list[Path]):
    models = [load_model(str(folder)) for folder in folders]
    first = models[0]
    for folder, model in zip(folders[1:], models[1:], strict=True):
        decoder = model.decoder.state_dict()
        if any(not torch.equal(v, decoder[k]) for k, v in first.decoder.state_dict().items()):
            raise SystemExit(f"{folder}'s decoder differs from {folders[0]}'s: only an encoder refit's snapshots, "
                             "which share their decoder, can be averaged this way")
    states = [m.encoder.state_dict() for m in models]
    averaged = {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[-1].items()
    }
    first.encoder.load_state_dict(averaged)
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshots", nargs="+", type=Path, help="release-format folders sharing one decoder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write")
    args = parser.parse_args(argv)
    if len(args.snapshots) < 2:
        parser.error("give at least two snapshots to average")
    save_pretrained(average_encoders(args.snapshots), args.output)
    print(f"{args.output}: encoder averaged over {len(args.snapshots)} snapshots", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
