"""The course's one command line: python -m mdn_course COMMAND [options].

Commands:
  train            train the lesson model, print its held-out NLL beside the Bayes floor, save a checkpoint
  bench            benchmarks: training vs the reference recipe, batched dreaming
  run-notebooks    execute the whole lesson series headless into a folder (the main job)
  grade            grade a folder of submitted exercise notebooks (instructors)
  narration        build, check, pack or fetch the narration audio
  student-version  regenerate the student copy of the exercise from its solution
  lab              copy the lessons into a git-ignored workspace/ and open JupyterLab there (students)
  sync-notebooks   rewrite the lessons' Colab badges and install cells from mdn_course/links.py

Run python -m mdn_course COMMAND --help for a command's options.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _train(argv) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course train",
                                     description="Train the lesson's MDN-RNN on the synthetic fork world.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: train_model's default")
    parser.add_argument("--out", type=Path, default=Path("checkpoints/mdnrnn.pt"), help="checkpoint path")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    import torch

    from . import (MDNRNN, bayes_optimal_nll, describe_device, evaluate_nll, generate_synthetic_data,
                   get_device, set_seed, train_model)

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
        torch.save({"state_dict": model.state_dict(), "config": {
            "latent_dim": model.latent_dim, "action_dim": model.action_dim, "hidden_dim": model.hidden_dim,
            "n_components": model.n_components, "predict_change": model.predict_change},
            "history": {"train_nll": history.train_nll, "heldout_nll": history.heldout_nll}}, args.out)
    except OSError as exc:
        print(f"error: could not write the checkpoint to {args.out}: {exc}; pass --out with a writable path",
              file=sys.stderr)
        return 1
    print(f"checkpoint saved to {args.out}")
    return 0


def _bench(argv) -> int:
    from .tools.bench import main as run
    return run(argv)


def _run_notebooks(argv) -> int:
    from .tools.notebook_runner import main as run
    return run(argv)


def _grade(argv) -> int:
    from .grading.cli import main as run
    return run(argv)


def _narration(argv) -> int:
    from .narration.cli import main as run
    return run(argv)


def _student_version(argv) -> int:
    from .exercise.student_version import main as run
    return run(argv)


def _lab(argv) -> int:
    from .tools.lab import main as run
    return run(argv)


def _sync_notebooks(argv) -> int:
    from .tools.notebook_sync import main as run
    return run(argv)


COMMANDS = {"train": _train, "bench": _bench, "run-notebooks": _run_notebooks, "grade": _grade,
            "narration": _narration, "student-version": _student_version, "lab": _lab,
            "sync-notebooks": _sync_notebooks}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__.strip())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{__doc__.strip()}", file=sys.stderr)
        return 2
    return COMMANDS[command](rest)


if __name__ == "__main__":
    sys.exit(main())
