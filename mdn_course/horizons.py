"""Comparing dreamed futures with real ones at every horizon.

A single dream and a single real path differ even for a perfect model, so
long-horizon quality is a comparison of *distributions*, step by step. For
one-dimensional samples of equal size the Wasserstein-1 distance is just the
mean gap between the sorted samples; ``wasserstein_1`` adds it up over the
latent dimensions, and ``horizon_distance`` does it for every step of two
batches of trajectories.
"""
from __future__ import annotations

import torch

__all__ = ["wasserstein_1", "horizon_distance"]


def wasserstein_1(x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over dimensions of the 1-D Wasserstein-1 distances between samples x, y, each (n, D)."""
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"x and y must both be (n, D) with the same n, got {tuple(x.shape)} and {tuple(y.shape)}")
    return (x.sort(dim=0).values - y.sort(dim=0).values).abs().mean(dim=0).sum().item()


def horizon_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Wasserstein-1 distance (summed over dimensions) between two batches (n, T + 1, D), at each step: (T + 1,)."""
    if a.shape != b.shape or a.dim() != 3:
        raise ValueError(f"a and b must both be (n, T + 1, D), got {tuple(a.shape)} and {tuple(b.shape)}")
    a, b = a.detach().cpu(), b.detach().cpu()
    return (a.sort(dim=0).values - b.sort(dim=0).values).abs().mean(dim=0).sum(dim=-1)
