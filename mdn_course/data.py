"""The lesson's synthetic 2-D world, with a fork in the road, and its exact NLL floor.

Dynamics, per sequence and step (``a[t]`` ~ N(0, 0.5^2) per dimension,
``z[0]`` ~ N(0, 0.5^2)):

    z[t+1] = z[t] + 0.3 * tanh(a[t]) + N(0, 0.05^2) noise per dimension
    and, whenever z[t][0] > 0.5, dimension 1 is also pushed by +0.4 or -0.4
    with probability 1/2 each: the fork.

Right of the line z[0] = 0.5 the next value of dimension 1 has two equally
likely, well separated outcomes, so the best single-point prediction (their
average) is a place the world never goes. ``bayes_optimal_nll`` gives the
negative log-likelihood of the true dynamics: no model can beat it on average.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .loss import mdn_nll_from_logs

__all__ = ["WorldSpec", "WORLD", "generate_synthetic_data", "bayes_optimal_nll", "true_next_state_mixture"]


@dataclass(frozen=True)
class WorldSpec:
    """Constants of the synthetic world (one place, shared by generator and floor)."""

    latent_dim: int = 2
    action_dim: int = 2
    step_scale: float = 0.3
    noise_std: float = 0.05
    action_std: float = 0.5
    start_std: float = 0.5
    fork_threshold: float = 0.5
    fork_offset: float = 0.4


WORLD = WorldSpec()


def _make_generator(seed: Optional[int], generator: Optional[torch.Generator]) -> torch.Generator:
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is not None:
        return generator
    g = torch.Generator()
    g.manual_seed(0 if seed is None else int(seed))
    return g


def generate_synthetic_data(n_sequences: int = 4000, seq_len: int = 20, *, seed: Optional[int] = None,
                            generator: Optional[torch.Generator] = None,
                            world: WorldSpec = WORLD) -> Tuple[torch.Tensor, torch.Tensor]:
    """Simulate ``n_sequences`` trajectories of ``seq_len`` steps, all at once.

    Returns ``z`` of shape (n_sequences, seq_len + 1, 2) and ``a`` of shape
    (n_sequences, seq_len, 2), float32 on the CPU (move them with ``.to(device)``).
    Randomness comes only from ``seed`` (default 0) or ``generator`` (a CPU ``torch.Generator``),
    never from torch's global state, so calling this does not disturb other seeded code.
    """
    if n_sequences < 1 or seq_len < 1:
        raise ValueError(f"n_sequences and seq_len must be positive, got {n_sequences} and {seq_len}")
    g = _make_generator(seed, generator)
    n, d = n_sequences, world.latent_dim
    a = torch.randn(n, seq_len, world.action_dim, generator=g) * world.action_std
    noise = torch.randn(n, seq_len, d, generator=g) * world.noise_std
    fork_up = torch.rand(n, seq_len, generator=g) < 0.5
    z0 = torch.randn(n, d, generator=g) * world.start_std
    return roll_out(z0, a, noise, fork_up, world), a


def roll_out(z0: torch.Tensor, a: torch.Tensor, noise: torch.Tensor, fork_up: torch.Tensor,
             world: WorldSpec = WORLD) -> torch.Tensor:
    """The world's dynamics: states (N, T+1, D) from a start (N, D), actions and noise (N, T, .)
    and which way each fork step pushes (``fork_up``, (N, T) bool). Both worlds share it; they
    differ only in who decides ``fork_up`` (a fresh coin here, the previous action in the late fork)."""
    n, seq_len, d = noise.shape
    z = torch.empty(n, seq_len + 1, d)
    z[:, 0] = z0
    for t in range(seq_len):
        z[:, t + 1] = world_step(z[:, t], a[:, t], noise[:, t], fork_up[:, t], world)
    return z


def world_step(z: torch.Tensor, a: torch.Tensor, noise: torch.Tensor, fork_up: torch.Tensor,
               world: WorldSpec = WORLD) -> torch.Tensor:
    """One step of the dynamics for a batch: ``z`` (N, D), ``a`` (N, A), ``noise`` (N, D) and
    ``fork_up`` (N,) bool -> the next states (N, D), on the inputs' device. ``roll_out`` and the
    real environments of ``control.py`` both step with it, so there is one copy of the rules."""
    step = world.step_scale * torch.tanh(a) + noise
    forked = z[:, 0] > world.fork_threshold
    fork_sign = fork_up.float() * 2.0 - 1.0
    step[:, 1] += forked.float() * fork_sign * world.fork_offset
    return z + step


def true_next_state_mixture(z_t: torch.Tensor, a_t: torch.Tensor, world: WorldSpec = WORLD):
    """The true distribution of z[t+1] as per-dimension mixtures (pi, mu, sigma), each (..., 2, 2).

    Two components per dimension; where there is no fork they coincide, each with weight 1/2.
    """
    base = z_t + world.step_scale * torch.tanh(a_t)
    forked = (z_t[..., 0] > world.fork_threshold).to(z_t.dtype)
    offsets = torch.zeros(*z_t.shape, 2, dtype=z_t.dtype, device=z_t.device)
    offsets[..., 1, 0] = forked * world.fork_offset
    offsets[..., 1, 1] = -forked * world.fork_offset
    mu = base.unsqueeze(-1) + offsets
    pi = torch.full_like(mu, 0.5)
    sigma = torch.full_like(mu, world.noise_std)
    return pi, mu, sigma


def rollout_float64(z: torch.Tensor, a: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``z`` (N, T+1, D) and ``a`` (N, T, A) checked for matching shapes, as float64 on the CPU (for the floors)."""
    if z.dim() != 3 or a.dim() != 3 or z.shape[1] != a.shape[1] + 1 or z.shape[0] != a.shape[0]:
        raise ValueError(f"expected z (N, T+1, 2) and a (N, T, 2), got z {tuple(z.shape)} and a {tuple(a.shape)}")
    return z.double().cpu(), a.double().cpu()


def bayes_optimal_nll(z: torch.Tensor, a: torch.Tensor, world: WorldSpec = WORLD) -> float:
    """Mean NLL per step (nats, summed over dimensions) of the true dynamics on (z, a).

    ``z``: (N, T+1, 2), ``a``: (N, T, 2) as from ``generate_synthetic_data``.
    Computed in float64 from the closed form: the floor a perfect model reaches.
    """
    z64, a64 = rollout_float64(z, a)
    pi, mu, sigma = true_next_state_mixture(z64[:, :-1], a64, world)
    return float(mdn_nll_from_logs(torch.log(pi), mu, torch.log(sigma), z64[:, 1:]))
