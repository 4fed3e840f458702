"""The MDN-RNN and its loss, standalone: the one definition the library and the grader's sandbox share.

The library re-exports everything here (``mdn_course.MDNRNN`` *is* :class:`MDNRNN` of this file,
``mdn_course.mdn_loss`` *is* :func:`mdn_loss`), and the grader copies this file into the sandbox
of the training-step exercise, whose answer is handed a real model and calls the loss. So it
imports only the standard library and torch, never the rest of the package
(``tests/test_oracle.py`` proves both: one definition, and nothing else imported).

Shapes used throughout (B = batch, T = time steps, D = latent size,
A = action size, H = hidden size, K = mixture components):

* ``z``: (B, T, D) latent states, ``a``: (B, T, A) actions;
* ``WorldLSTM`` turns them into hidden states ``h``: (B, T, H);
* ``MDNHead`` turns each hidden state into, for every latent dimension
  separately (as in Ha & Schmidhuber's World Models), a mixture of K Gaussians:
  ``pi``, ``mu``, ``sigma`` each of shape (B, T, D, K).

Inside, the head works in log space (log-softmax weights, a bounded
log standard deviation) so training never takes the log of a zero or exponentiates
a huge number; ``pi`` and ``sigma`` are exposed for teaching and plotting.

The loss is the negative log-likelihood of the next state under the mixture: for every latent
dimension the density is sum_k pi_k N(z | mu_k, sigma_k^2); its log is computed as
logsumexp_k(log pi_k + log N(z | mu_k, sigma_k^2)) so that a target far from every mean gives a
large, finite loss instead of log(0) = -inf. The per-dimension log-likelihoods are summed
(dimensions are independent given the history) and the negative is averaged over every leading
(batch, time) position. ``mdn_loss`` is the reference answer of the loss exercise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["WorldLSTM", "MDNHead", "MDNRNN", "MixtureOutput", "LSTMState", "mdn_loss", "mdn_nll_from_logs",
           "validate_mixture_shapes"]

LSTMState = Tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class MixtureOutput:
    """What ``MDNRNN.forward`` returns.

    Unpacks as ``pi, mu, sigma, hidden = model(z, a)``; also carries the
    log-space versions the loss should use (``log_pi``, ``log_sigma``).
    """

    pi: torch.Tensor          # (B, T, D, K), sums to 1 over K
    mu: torch.Tensor          # (B, T, D, K)
    sigma: torch.Tensor       # (B, T, D, K), positive
    hidden: LSTMState         # (h, c), each (1, B, H): feed back in to go on step by step
    log_pi: torch.Tensor      # (B, T, D, K)
    log_sigma: torch.Tensor   # (B, T, D, K)

    def __iter__(self) -> Iterator:
        return iter((self.pi, self.mu, self.sigma, self.hidden))

    def __len__(self) -> int:
        return 4


def _check_last_dim(name: str, x: torch.Tensor, expected: int, what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != expected:
        raise ValueError(
            f"{name} must have shape (batch, time, {expected}) [{what}], got {tuple(x.shape)}; "
            f"add missing dimensions with .unsqueeze(0) or .view(batch, time, {expected})"
        )


class WorldLSTM(nn.Module):
    """The memory: an LSTM reading the concatenated latent state and action."""

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int = 64):
        super().__init__()
        self.latent_dim, self.action_dim, self.hidden_dim = latent_dim, action_dim, hidden_dim
        self.lstm = nn.LSTM(latent_dim + action_dim, hidden_dim, batch_first=True)

    def forward(self, z: torch.Tensor, a: torch.Tensor,
                hidden: Optional[LSTMState] = None) -> Tuple[torch.Tensor, LSTMState]:
        """(B, T, D) and (B, T, A) -> hidden states (B, T, H) and the final (h, c)."""
        _check_last_dim("z", z, self.latent_dim, "latent_dim")
        _check_last_dim("a", a, self.action_dim, "action_dim")
        if z.shape[:2] != a.shape[:2]:
            raise ValueError(f"z and a must share batch and time sizes, got z {tuple(z.shape)} and a {tuple(a.shape)}")
        return self.lstm(torch.cat([z, a], dim=-1), hidden)


class MDNHead(nn.Module):
    """Hidden state -> a mixture of K Gaussians for every latent dimension.

    One linear layer produces, per dimension and component, a weight logit, a
    mean and a raw log standard deviation. The log standard deviation is squashed
    smoothly into [log_sigma_min, log_sigma_max] so sigma can neither collapse to
    zero (infinite density, NaN loss) nor explode.
    """

    def __init__(self, hidden_dim: int, latent_dim: int, n_components: int = 5,
                 log_sigma_min: float = -7.0, log_sigma_max: float = 2.0):
        super().__init__()
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        self.latent_dim, self.n_components = latent_dim, n_components
        self.log_sigma_min, self.log_sigma_max = log_sigma_min, log_sigma_max
        self.proj = nn.Linear(hidden_dim, 3 * latent_dim * n_components)

    def forward(self, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., H) -> log_pi, mu, log_sigma, each (..., D, K)."""
        out = self.proj(h).unflatten(-1, (3, self.latent_dim, self.n_components))
        logits, mu, raw_log_sigma = out.unbind(dim=-3)
        log_pi = F.log_softmax(logits, dim=-1)
        span = self.log_sigma_max - self.log_sigma_min
        log_sigma = self.log_sigma_min + span * torch.sigmoid(raw_log_sigma)
        return log_pi, mu, log_sigma


class MDNRNN(nn.Module):
    """World Models' memory: ``WorldLSTM`` followed by ``MDNHead``.

    ``predict_change=True`` (the default) makes the head predict the *change*
    z[t+1] - z[t]: the means it outputs are added to the current state. The
    distribution is the same kind of mixture, but the network no longer has to
    copy z[t] through the LSTM, which makes it learn faster and more precisely.
    """

    def __init__(self, latent_dim: int = 2, action_dim: int = 2, hidden_dim: int = 32,
                 n_components: int = 5, predict_change: bool = True):
        super().__init__()
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.hidden_dim, self.n_components = hidden_dim, n_components
        self.predict_change = predict_change
        self.memory = WorldLSTM(latent_dim, action_dim, hidden_dim)
        self.head = MDNHead(hidden_dim, latent_dim, n_components)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, z: torch.Tensor, a: torch.Tensor,
                hidden: Optional[LSTMState] = None) -> MixtureOutput:
        """z (B, T, D), a (B, T, A) -> mixture over z[t+1] for every t, and the LSTM state."""
        h, hidden = self.memory(z, a, hidden)
        log_pi, mu, log_sigma = self.head(h)
        if self.predict_change:
            mu = mu + z.unsqueeze(-1)
        return MixtureOutput(pi=log_pi.exp(), mu=mu, sigma=log_sigma.exp(), hidden=hidden,
                             log_pi=log_pi, log_sigma=log_sigma)


# ---------------------------------------------------------------- the loss

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def validate_mixture_shapes(pi, mu, sigma, z_next) -> None:
    """Raise a ValueError/TypeError naming the tensor whose shape is wrong, and the shape expected."""
    for name, t in (("pi", pi), ("mu", mu), ("sigma", sigma), ("z_next", z_next)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}; "
                            f"convert with torch.as_tensor({name}, dtype=torch.float32)")
    if pi.dim() < 2:
        raise ValueError(f"pi must have shape (..., latent_dim, K), got {tuple(pi.shape)}")
    for name, t in (("mu", mu), ("sigma", sigma)):
        if t.shape != pi.shape:
            raise ValueError(f"{name} must have the same shape as pi (..., latent_dim, K) = {tuple(pi.shape)}, "
                             f"got {tuple(t.shape)}")
    if z_next.shape != pi.shape[:-1]:
        hint = ""
        if z_next.shape == pi.shape[:-2]:
            hint = " (it looks like one latent value per sample; z_next needs the latent dimension too)"
        elif z_next.dim() == pi.dim() and z_next.shape[-1] == 1:
            hint = " (drop the trailing 1: the loss adds the component axis itself)"
        raise ValueError(f"z_next must have shape {tuple(pi.shape[:-1])} (pi's shape without K), "
                         f"got {tuple(z_next.shape)}{hint}")


def mdn_nll_from_logs(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                      z_next: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The same negative log-likelihood, from log weights and log standard deviations.

    This is what training uses: it never takes a log of a softmax output.
    ``reduction="none"`` returns the per-position NLL (summed over dimensions).
    """
    standardized = (z_next.unsqueeze(-1) - mu) * torch.exp(-log_sigma)
    log_component = -0.5 * standardized ** 2 - log_sigma - _LOG_SQRT_2PI
    log_density = torch.logsumexp(log_pi + log_component, dim=-1)  # (..., D)
    nll = -log_density.sum(dim=-1)                                 # (...)
    if reduction == "none":
        return nll
    if reduction == "mean":
        return nll.mean()
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def mdn_loss(pi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, z_next: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood of ``z_next`` under per-dimension Gaussian mixtures.

    Args:
        pi: mixture weights, shape (..., D, K), non-negative, summing to 1 over K.
        mu: component means, shape (..., D, K).
        sigma: component standard deviations (not variances), shape (..., D, K), positive.
        z_next: observed next state, shape (..., D).

    Returns:
        A scalar tensor: the NLL summed over the D dimensions, averaged over all
        leading positions. Zero weights and tiny sigmas are clamped to the
        smallest positive float so the result and its gradients stay finite.
    """
    validate_mixture_shapes(pi, mu, sigma, z_next)
    tiny = torch.finfo(pi.dtype).tiny if pi.is_floating_point() else 1e-38
    log_pi = torch.log(pi.clamp_min(tiny))
    log_sigma = torch.log(sigma.clamp_min(tiny))
    return mdn_nll_from_logs(log_pi, mu, log_sigma, z_next)
