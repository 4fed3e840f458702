"""A world whose future depends on the past: the late fork, and its exact NLL floor.

The lesson world (``data.py``) is Markov: the next state depends only on the
current state and action, so a network that sees only ``(z[t], a[t])`` can in
principle match an LSTM there. This variant changes one thing: right of the
fork line, which way ``z[1]`` is pushed is decided by the action taken one step
*earlier* (up if ``a[t-1][1] > 0``, down otherwise; a fair coin at the very
first step, which has no earlier action). Effects that arrive a step late are
everyday in control: a steering command, a delay in the wheels.

* A model that sees the present step alone cannot know ``a[t-1]`` (it is
  independent of ``a[t]``), so at the fork it must still hedge 50/50.
* A model with memory read ``a[t-1]`` one step ago, so it can predict one future.

``memory_world_bayes_nll`` is the negative log-likelihood of the true
conditional distribution given the whole past: the floor for this world.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .data import WORLD, WorldSpec, _make_generator, roll_out, rollout_float64, true_next_state_mixture
from .loss import mdn_nll_from_logs

__all__ = ["generate_memory_world_data", "memory_world_bayes_nll"]


def _branch_up(a: torch.Tensor, coin_up: torch.Tensor) -> torch.Tensor:
    """(N, T) bool: whether a fork at step t pushes up; decided by a[t-1][1], or the coin at t = 0."""
    return torch.cat([coin_up.reshape(-1, 1), a[:, :-1, 1] > 0], dim=1)


def generate_memory_world_data(n_sequences: int = 2000, seq_len: int = 20, *, seed: Optional[int] = None,
                               generator: Optional[torch.Generator] = None,
                               world: WorldSpec = WORLD, actions: Optional[torch.Tensor] = None,
                               start: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Simulate the late-fork world: ``z`` (N, T+1, 2) and ``a`` (N, T, 2), float32 on the CPU.

    Same drift, noise and fork line as ``generate_synthetic_data``; the only change is
    who decides the fork's direction: the previous action instead of a fresh coin.
    ``actions`` (T, A) gives every sequence the same action plan (``seq_len`` is then T) and
    ``start`` (D,) the same start state: real rollouts to compare with dreams.
    """
    if n_sequences < 1 or seq_len < 1:
        raise ValueError(f"n_sequences and seq_len must be positive, got {n_sequences} and {seq_len}")
    g = _make_generator(seed, generator)
    n, d = n_sequences, world.latent_dim
    a = torch.randn(n, seq_len, world.action_dim, generator=g) * world.action_std
    if actions is not None:
        plan = torch.as_tensor(actions, dtype=torch.float32)
        if plan.dim() != 2 or plan.shape[1] != world.action_dim:
            raise ValueError(f"actions must be (T, {world.action_dim}), got {tuple(plan.shape)}")
        seq_len = plan.shape[0]
        a = plan.expand(n, seq_len, world.action_dim).clone()
    noise = torch.randn(n, seq_len, d, generator=g) * world.noise_std
    fork_up = _branch_up(a, torch.rand(n, generator=g) < 0.5)
    z0 = torch.randn(n, d, generator=g) * world.start_std
    if start is not None:
        z0[:] = torch.as_tensor(start, dtype=torch.float32).reshape(d)
    return roll_out(z0, a, noise, fork_up, world), a


def memory_world_bayes_nll(z: torch.Tensor, a: torch.Tensor, world: WorldSpec = WORLD) -> float:
    """Mean NLL per step (nats, summed over dimensions) of the true dynamics given the whole past.

    A fork step after the first one has a single future (the previous action is in the past),
    so it costs only the noise; a fork at step 0 is a fair coin and costs ``log 2`` more.
    Computed in float64 from the closed form: what a perfect model with memory reaches.
    """
    z64, a64 = rollout_float64(z, a)
    n, steps, _ = a64.shape
    _, mu, sigma = true_next_state_mixture(z64[:, :-1], a64, world)   # same means and noise as the lesson world
    known = torch.ones(n, steps, dtype=torch.bool)
    known[:, 0] = False                                   # no earlier action: the coin is unknown
    up = _branch_up(a64, torch.zeros(n, dtype=torch.bool))
    log_half = torch.log(torch.tensor(0.5, dtype=torch.float64))
    log_pi = torch.full_like(mu, float(log_half))
    log_pi[..., 1, 0] = torch.where(known, torch.where(up, 0.0, -torch.inf), log_half)
    log_pi[..., 1, 1] = torch.where(known, torch.where(up, -torch.inf, 0.0), log_half)
    log_sigma = torch.log(sigma)
    return float(mdn_nll_from_logs(log_pi, mu, log_sigma, z64[:, 1:]))
