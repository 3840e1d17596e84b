"""The starting state of an encoder refit: a released model's encoder and decoder beside a later training state's
discriminator.

``encoder_only`` training (training/options.py) fits the encoder to a fixed decoder through the fixed discriminator's
features. A release keeps no discriminator, so this takes it (and its momentum copy, feature queues and data
position) from a training state of the same run saved later, and the encoder and decoder from the released model
(the encoder's spectral-norm estimate recomputed, as ``--resume-from`` does for a release without training state).
The encoder's and decoder's optimizer moments start afresh. The state is labelled with the release's iteration, so
a refit's snapshots count the iterations its decoder was trained for.

    python reports/experiments/encoder_refit_start.py \\
        --model reports/runs/RUN/network-snapshots/iteration-0082000 --iteration 82000 \\
        --state reports/runs/RUN/checkpoint.pt --out reports/runs/REFIT-start

writes ``REFIT-start/checkpoint.pt``, which ``dcvae-train train --resume-from REFIT-start`` starts from.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from dcvae_tools import load_model
from training.options import TrainingOptions
from training.resume import weights_only_state
from training.run_state import CHECKPOINT_NAME, load_checkpoint, write_checkpoint


def refit_start(model_dir: Path, iteration: int, state_path: Path) -> dict:
    state = load_checkpoint(state_path)
    options = TrainingOptions.from_dict(json.loads(state["options"]))
    if iteration >= int(state["iteration"]):
        raise SystemExit(f"{model_dir} is at iteration {iteration:,}, not before {state_path}'s "
                         f"{int(state['iteration']):,}: the discriminator must come from later in the same run")
    model = load_model(str(model_dir))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the spectral-norm vectors' initial draw: the same start on every machine
        weights = weights_only_state(model, options)
    composed = {k: v for k, v in state.items() if k not in ("opt_E", "opt_G")}
    composed.update(E=weights["E"], G=weights["G"], G_ema=weights["G_ema"], iteration=iteration)
    return composed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="the released model (a release-format folder)")
    parser.add_argument("--iteration", type=int, required=True, help="the iteration the model was saved at")
    parser.add_argument("--state", type=Path, required=True, help="a later checkpoint.pt of the run that trained it")
    parser.add_argument("--out", type=Path, required=True, help="folder for the composed checkpoint.pt")
    args = parser.parse_args(argv)
    composed = refit_start(args.model, args.iteration, args.state)
    args.out.mkdir(parents=True, exist_ok=True)
    write_checkpoint(composed, args.out / CHECKPOINT_NAME)
    print(f"{args.out / CHECKPOINT_NAME}: encoder and decoder of {args.model} (iteration {composed['iteration']:,}), "
          f"discriminator of {args.state}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
