"""Dreaming: rolling the MDN-RNN forward on its own samples.

At each step the model's mixture for z[t+1] is sampled and the sample is fed
back in as the next input, with the LSTM state carried along. All ``n`` dreams
advance together as one batch on the model's device.

Temperature tau follows the World Models paper: the mixture *logits* are
divided by tau (so tau < 1 sharpens the choice of component and tau > 1 evens
it out) and each component's standard deviation is multiplied by sqrt(tau)
(its variance by tau). Simply multiplying sigma by tau, as one might naively do,
only widens or narrows each bump and never changes *which* future is picked:
at a fork it keeps choosing branches in the learned proportions however low
the temperature. As tau -> 0 the paper's rule becomes deterministic: the most
likely component's mean.
"""
from __future__ import annotations

from typing import Optional

import torch

from .model import MDNRNN, MixtureOutput

__all__ = ["dream", "sample_mixture", "predict_next"]


def sample_mixture(log_pi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, temperature: float = 1.0,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw one sample per (..., D) position from per-dimension mixtures (..., D, K).

    ``temperature == 0`` returns the mean of the most likely component.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if temperature == 0:
        best = log_pi.argmax(dim=-1, keepdim=True)
        return mu.gather(-1, best).squeeze(-1)
    # Gumbel-max picks component k with probability softmax(log_pi / tau)_k.
    uniform = torch.rand(log_pi.shape, generator=generator, device=log_pi.device, dtype=log_pi.dtype)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    choice = (log_pi / temperature + gumbel).argmax(dim=-1, keepdim=True)
    noise = torch.randn(mu.shape[:-1], generator=generator, device=mu.device, dtype=mu.dtype)
    chosen_mu = mu.gather(-1, choice).squeeze(-1)
    chosen_sigma = sigma.gather(-1, choice).squeeze(-1)
    return chosen_mu + chosen_sigma * (temperature ** 0.5) * noise


def _start_states(z_start: torch.Tensor, n: int, latent_dim: int) -> torch.Tensor:
    given = torch.as_tensor(z_start, dtype=torch.float32)
    z_start = given.unsqueeze(0) if given.dim() == 1 else given
    if z_start.dim() != 2 or z_start.shape[-1] != latent_dim:
        raise ValueError(f"z_start must have shape ({latent_dim},), (1, {latent_dim}) or (n, {latent_dim}) "
                         f"for this model (latent_dim={latent_dim}); got {tuple(given.shape)}")
    if z_start.shape[0] == 1:
        return z_start.expand(n, latent_dim)
    if z_start.shape[0] != n:
        raise ValueError(f"z_start has {z_start.shape[0]} rows but n={n} dreams were asked for; "
                         f"pass one start state, or n of them")
    return z_start


def _action_plan(actions: torch.Tensor, n: int, action_dim: int) -> torch.Tensor:
    actions = torch.as_tensor(actions, dtype=torch.float32)
    if actions.dim() == 2:
        actions = actions.unsqueeze(0)
    if actions.dim() != 3 or actions.shape[-1] != action_dim or actions.shape[0] not in (1, n):
        raise ValueError(f"actions must have shape (T, {action_dim}), (1, T, {action_dim}) or (n, T, {action_dim}) "
                         f"for this model (action_dim={action_dim}, n={n}); got {tuple(actions.shape)}")
    return actions.expand(n, *actions.shape[1:])


@torch.no_grad()
def predict_next(model: MDNRNN, z_t, a_t=None, hidden=None):
    """The model's mixture for the next state after one step from ``z_t`` (D,) or (B, D).

    ``a_t`` defaults to zero action; ``hidden=None`` means a fresh LSTM state.
    Returns a ``MixtureOutput`` whose tensors have shape (B, D, K).
    """
    z = torch.as_tensor(z_t, dtype=torch.float32)
    z = z.unsqueeze(0) if z.dim() == 1 else z
    z = _start_states(z, z.shape[0], model.latent_dim)
    if a_t is None:
        a_t = torch.zeros(z.shape[0], model.action_dim)
    a = torch.as_tensor(a_t, dtype=torch.float32).reshape(z.shape[0], model.action_dim)
    model.eval()
    out = model(z.unsqueeze(1).to(model.device), a.unsqueeze(1).to(model.device), hidden)
    return MixtureOutput(pi=out.pi[:, 0], mu=out.mu[:, 0], sigma=out.sigma[:, 0], hidden=out.hidden,
                         log_pi=out.log_pi[:, 0], log_sigma=out.log_sigma[:, 0])


@torch.no_grad()
def dream(model: MDNRNN, z_start, actions, temperature: float = 1.0, n: int = 1,
          generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Imagine ``n`` trajectories at once, starting at ``z_start`` and following ``actions``.

    Args:
        model: a trained ``MDNRNN``.
        z_start: (D,), (1, D) or (n, D) start state(s).
        actions: (T, A) shared by every dream, or (n, T, A).
        temperature: the paper's tau (see the module docstring); 0 is deterministic.
        n: number of dreams.
        generator: optional ``torch.Generator`` on the model's device; otherwise
            torch's global RNG is used, so ``set_seed`` makes dreams repeatable.

    Returns:
        A tensor (n, T + 1, D) on the model's device; row 0 of each dream is its start.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    device = model.device
    z = _start_states(z_start, n, model.latent_dim).to(device)
    plan = _action_plan(actions, n, model.action_dim).to(device)
    was_training = model.training
    model.eval()
    steps = [z]
    hidden = None
    for t in range(plan.shape[1]):
        out = model(z.unsqueeze(1), plan[:, t:t + 1], hidden)
        hidden = out.hidden
        z = sample_mixture(out.log_pi[:, 0], out.mu[:, 0], out.sigma[:, 0], temperature, generator)
        steps.append(z)
    model.train(was_training)
    return torch.stack(steps, dim=1)
