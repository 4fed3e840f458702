"""The MDN loss: negative log-likelihood of the next state under the mixture.

``mdn_loss`` is the exercise's reference answer. For every latent dimension the
density is sum_k pi_k N(z | mu_k, sigma_k^2); its log is computed as
logsumexp_k(log pi_k + log N(z | mu_k, sigma_k^2)) so that a target far from every
mean gives a large, finite loss instead of log(0) = -inf. The per-dimension
log-likelihoods are summed (dimensions are independent given the history) and
the negative is averaged over every leading (batch, time) position.
"""
from __future__ import annotations

import math

import torch

__all__ = ["mdn_loss", "mdn_nll_from_logs", "validate_mixture_shapes"]

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
