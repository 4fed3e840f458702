"""What a head with one mixture per dimension cannot express: a fork that moves two numbers together.

The MDN head gives each latent dimension its own mixture, so given the past the dimensions are
independent. At a *diagonal* fork, where the world moves by +(d, d) or -(d, d), the best such model
is the product of the two marginals (each a perfect two-bump mixture), and half of its samples combine
the branches: +(d, -d) or -(d, d). Lesson 2 shows it with ``diagonal_fork_samples``.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

__all__ = ["diagonal_fork_samples"]


def diagonal_fork_samples(n: int, *, offset: float = 0.4, noise: float = 0.05,
                          generator: Optional[torch.Generator] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """``n`` changes (n, 2) from the diagonal-fork world, and ``n`` from its best per-dimension model.

    World: one fair coin s = +-1 per sample, change = s * (offset, offset) + noise.
    Per-dimension model: each dimension's exact marginal (bumps at +-offset, weight 1/2, std ``noise``),
    sampled independently: one coin per dimension. Both on the CPU.
    """
    if n < 1 or offset <= 0 or noise <= 0:
        raise ValueError(f"need n >= 1, offset > 0 and noise > 0; got n={n}, offset={offset}, noise={noise}")

    def coins(shape):
        return torch.where(torch.rand(shape, generator=generator) < 0.5, 1.0, -1.0)

    world = coins((n, 1)).expand(n, 2) * offset + noise * torch.randn(n, 2, generator=generator)
    per_dimension = coins((n, 2)) * offset + noise * torch.randn(n, 2, generator=generator)
    return world, per_dimension
