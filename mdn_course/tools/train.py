"""``python -m mdn_course train``: train the lesson model, compare it with the Bayes floor, save a checkpoint."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..data import bayes_optimal_nll, generate_synthetic_data
from ..device import describe_device, get_device, set_seed
from ..model import MDNRNN, save_checkpoint
from ..training import evaluate_nll, train_model

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course train",
                                     description="Train the lesson's MDN-RNN on the synthetic fork world.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: train_model's default")
    parser.add_argument("--out", type=Path, default=Path("checkpoints/mdnrnn.pt"), help="checkpoint path")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    device = get_device()
    print(f"training on {describe_device(device)}")
    set_seed(args.seed)
    z, a = generate_synthetic_data(seed=args.seed)
    model = MDNRNN().to(device)
    extra = {} if args.epochs is None else {"epochs": args.epochs}
    history = train_model(model, z, a, seed=args.seed, progress=not args.quiet, **extra)
    z_test, a_test = generate_synthetic_data(4000, seed=10_000 + args.seed)
    nll, floor = evaluate_nll(model, z_test, a_test), bayes_optimal_nll(z_test, a_test)
    print(f"held-out NLL on fresh data: {nll:.4f} nats/step; Bayes floor: {floor:.4f}; gap: {nll - floor:.4f} "
          f"({history.seconds:.1f} s)")
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(model, args.out, history={"train_nll": history.train_nll, "heldout_nll": history.heldout_nll})
    except OSError as exc:
        print(f"error: could not write the checkpoint to {args.out}: {exc}; pass --out with a writable path",
              file=sys.stderr)
        return 1
    print(f"checkpoint saved to {args.out}")
    return 0
