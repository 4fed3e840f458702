"""Where tensors live and how runs are made repeatable.

Every lesson starts with the same two calls, ``get_device()`` and ``set_seed()``,
so that the same notebook runs on a laptop CPU, an Apple GPU or a Colab GPU and
prints the same numbers on each run of a given machine.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["get_device", "describe_device", "set_seed"]


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the environment variable ``MDN_COURSE_DEVICE``) forces a
    choice such as ``"cpu"``; asking for a device that is not available raises a
    ``ValueError`` naming what is available instead of failing later inside torch.
    """
    choice = prefer or os.environ.get("MDN_COURSE_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {choice!r} was requested but CUDA is not available; use 'cpu'")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"device {choice!r} was requested but Apple MPS is not available; use 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def describe_device(device: torch.device | None = None) -> str:
    """One human line for the setup cell: GPU name and memory, or CPU thread count."""
    device = device or get_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"GPU: {props.name}, {props.total_memory / 2**30:.1f} GiB"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads != 1 else ''}"


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and torch (every device) so a notebook replays exactly.

    cuDNN is also put in deterministic mode: a little slower on a GPU, but the
    lesson's stored outputs stay reproducible.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if torch.cuda.is_available():
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
