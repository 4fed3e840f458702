"""Two alternatives to the LSTM memory, with the same interface as ``MDNRNN``.

Both end in the same ``MDNHead`` and return a ``MixtureOutput``, so
``train_model``, ``evaluate_nll``, ``predict_next`` and ``dream`` work on them
unchanged. They exist to answer two questions the lessons raise:

* ``FeedForwardMDN`` sees only the present ``(z[t], a[t])``: no memory at all.
  Comparing it with ``MDNRNN`` on a world whose future depends on the past
  (``memory_world.py``) shows what the LSTM's hidden state adds.
* ``TransformerMDN`` replaces the LSTM with causal self-attention over all past
  steps. Its "hidden state" for step-by-step use is simply the past inputs:
  each call attends over them again, which is what lets ``dream`` drive it.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .model import MDNHead, MixtureOutput, _check_last_dim

__all__ = ["FeedForwardMDN", "TransformerMDN"]


class _SequenceMDN(nn.Module):
    """Shared plumbing: sizes, device, and turning features into a ``MixtureOutput``."""

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int, n_components: int,
                 predict_change: bool):
        super().__init__()
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.hidden_dim, self.n_components = hidden_dim, n_components
        self.predict_change = predict_change
        self.head = MDNHead(hidden_dim, latent_dim, n_components)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _inputs(self, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        _check_last_dim("z", z, self.latent_dim, "latent_dim")
        _check_last_dim("a", a, self.action_dim, "action_dim")
        if z.shape[:2] != a.shape[:2]:
            raise ValueError(f"z and a must share batch and time sizes, got z {tuple(z.shape)} and a {tuple(a.shape)}")
        return torch.cat([z, a], dim=-1)

    def _mixture(self, features: torch.Tensor, z: torch.Tensor, hidden) -> MixtureOutput:
        log_pi, mu, log_sigma = self.head(features)
        if self.predict_change:
            mu = mu + z.unsqueeze(-1)
        return MixtureOutput(pi=log_pi.exp(), mu=mu, sigma=log_sigma.exp(), hidden=hidden,
                             log_pi=log_pi, log_sigma=log_sigma)


class FeedForwardMDN(_SequenceMDN):
    """An MDN that looks at the present step only: two tanh layers on ``[z[t], a[t]]``, then ``MDNHead``.

    ``hidden`` is accepted and ignored (always returned as ``None``): there is nothing to remember.
    """

    def __init__(self, latent_dim: int = 2, action_dim: int = 2, hidden_dim: int = 32,
                 n_components: int = 5, predict_change: bool = True):
        super().__init__(latent_dim, action_dim, hidden_dim, n_components, predict_change)
        self.body = nn.Sequential(nn.Linear(latent_dim + action_dim, hidden_dim), nn.Tanh(),
                                  nn.Linear(hidden_dim, hidden_dim), nn.Tanh())

    def forward(self, z: torch.Tensor, a: torch.Tensor, hidden=None) -> MixtureOutput:
        """z (B, T, D), a (B, T, A) -> a mixture over z[t+1] for every t, from step t alone."""
        return self._mixture(self.body(self._inputs(z, a)), z, None)


def _sinusoidal_positions(length: int, width: int, device) -> torch.Tensor:
    position = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, width, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / width))
    table = torch.zeros(length, width, device=device)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate[: width // 2])
    return table


class TransformerMDN(_SequenceMDN):
    """A small causal Transformer in place of the LSTM, then the same ``MDNHead``.

    Each step's input ``[z[t], a[t]]`` is projected to ``hidden_dim`` numbers, given a
    sinusoidal position (absolute step number, so any length works), and attends to
    itself and every earlier step (a causal mask), never to the future.

    Step-by-step use: ``hidden`` is the tensor of past inputs (B, T_past, D + A), or ``None``
    at the start. A call appends the new steps, attends over everything, and returns outputs
    for the new steps only, with the longer input history as the new ``hidden``.
    """

    def __init__(self, latent_dim: int = 2, action_dim: int = 2, hidden_dim: int = 32,
                 n_components: int = 5, predict_change: bool = True, n_layers: int = 2,
                 n_heads: int = 4):
        super().__init__(latent_dim, action_dim, hidden_dim, n_components, predict_change)
        if hidden_dim % n_heads or hidden_dim % 2:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be even and divisible by n_heads ({n_heads})")
        self.embed = nn.Linear(latent_dim + action_dim, hidden_dim)
        layer = nn.TransformerEncoderLayer(hidden_dim, n_heads, dim_feedforward=2 * hidden_dim, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)

    def forward(self, z: torch.Tensor, a: torch.Tensor, hidden: Optional[torch.Tensor] = None) -> MixtureOutput:
        """z (B, T, D), a (B, T, A), optional past inputs (B, T_past, D + A) -> mixtures for the T new steps."""
        new = self._inputs(z, a)
        past = 0 if hidden is None else hidden.shape[1]
        history = new if hidden is None else torch.cat([hidden, new], dim=1)
        length = history.shape[1]
        x = self.embed(history) + _sinusoidal_positions(length, self.hidden_dim, history.device)
        mask = torch.triu(torch.full((length, length), float("-inf"), device=history.device), diagonal=1)
        features = self.encoder(x, mask=mask)[:, past:]
        return self._mixture(features, z, history)
