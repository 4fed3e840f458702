"""Why a mixture learns, and what it learns with too many or too few components.

A mixture's negative log-likelihood at one point y is ``-log sum_k pi_k N(y | mu_k, sigma_k)``.
Its gradient with respect to component k's parameters is that component's own Gaussian
gradient, *weighted by its responsibility* for the point,

    r_k(y) = pi_k N(y | mu_k, sigma_k) / sum_j pi_j N(y | mu_j, sigma_j),

the posterior probability that k produced y. So each point pulls hardest on the component
that already explains it best, and components specialise: that is how two components find
the two branches of a fork. ``responsibilities`` computes r, ``nll_gradients_by_responsibility``
writes the gradient out in that form (lesson 1 compares it with autograd), and
``component_census`` counts the dead and the redundant components of a fitted mixture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

__all__ = ["responsibilities", "nll_gradients_by_responsibility", "merge_bumps", "ComponentCensus",
           "component_census"]


def _log_components(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    if not (log_pi.shape == mu.shape == log_sigma.shape):
        raise ValueError(f"log_pi, mu and log_sigma must have one shape (..., K); got "
                         f"{tuple(log_pi.shape)}, {tuple(mu.shape)}, {tuple(log_sigma.shape)}")
    y = torch.as_tensor(y, dtype=mu.dtype, device=mu.device)
    if y.shape != mu.shape[:-1]:
        raise ValueError(f"y must have the mixture's shape without its last (component) axis: "
                         f"expected {tuple(mu.shape[:-1])}, got {tuple(y.shape)}")
    z = (y.unsqueeze(-1) - mu) / log_sigma.exp()
    return log_pi - 0.5 * z ** 2 - log_sigma - 0.5 * math.log(2 * math.pi)


def responsibilities(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                     y: torch.Tensor) -> torch.Tensor:
    """r_k(y), shape (..., K): how much of each point each component explains (sums to 1 over K).

    ``log_pi``, ``mu``, ``log_sigma``: (..., K) as the ``MDNHead`` returns them; ``y``: (...).
    Computed in log space (a softmax over k of log pi_k + log N(y | mu_k, sigma_k)).
    """
    return torch.softmax(_log_components(log_pi, mu, log_sigma, y), dim=-1)


def nll_gradients_by_responsibility(log_pi: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor,
                                    y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradient of the summed NLL, -sum log p(y), written with responsibilities.

    Returns (d/d logits, d/d mu, d/d log_sigma), each (..., K), for a mixture whose weights are
    ``softmax(logits)``:

    - d/d logit_k = pi_k - r_k: a weight grows where its component explains more than its share;
    - d/d mu_k = -r_k (y - mu_k) / sigma_k**2: the mean moves towards the point, as in a single
      Gaussian's fit, but only as much as k is responsible for it;
    - d/d log sigma_k = r_k (1 - ((y - mu_k) / sigma_k)**2): widen if the point is far, narrow if near.
    """
    r = responsibilities(log_pi, mu, log_sigma, y)
    sigma = log_sigma.exp()
    z = (torch.as_tensor(y, dtype=mu.dtype, device=mu.device).unsqueeze(-1) - mu) / sigma
    return log_pi.exp() - r, -r * z / sigma, r * (1 - z ** 2)


def merge_bumps(weights: Sequence[float], means: Sequence[float], *, min_weight: float = 0.02,
                merge: float = 0.1) -> List[Tuple[float, float]]:
    """The bumps a 1-D mixture shows: components above ``min_weight``, merged when their means are close.

    Components are visited in order of their means; one whose mean lies within ``merge`` of the
    current bump's (weighted) mean joins it. Returns [(weight, mean)] from the lowest mean up.
    """
    weights, means = [float(w) for w in weights], [float(m) for m in means]
    if len(weights) != len(means):
        raise ValueError(f"one weight per mean: got {len(weights)} weights and {len(means)} means")
    found: List[List[float]] = []                       # [total weight, weighted sum of means]
    for k in sorted(range(len(means)), key=lambda j: means[j]):
        w, m = weights[k], means[k]
        if w < min_weight:
            continue
        if found and abs(m - found[-1][1] / found[-1][0]) < merge:
            found[-1][0] += w
            found[-1][1] += w * m
        else:
            found.append([w, w * m])
    return [(w, s / w) for w, s in found]


@dataclass(frozen=True)
class ComponentCensus:
    """How a fitted mixture uses its K components at one input."""

    n_components: int
    live: int        # weight >= the threshold: the component takes part in the prediction
    bumps: int       # distinct bumps the live components make (``merge_bumps``)

    @property
    def dead(self) -> int:
        """Components with (almost) no weight: they cost parameters and explain nothing."""
        return self.n_components - self.live

    @property
    def redundant(self) -> int:
        """Live components that share a bump with another: two or more do the work of one."""
        return self.live - self.bumps


def component_census(weights: Sequence[float], means: Sequence[float], *, min_weight: float = 0.02,
                     merge: float = 0.1) -> ComponentCensus:
    """Count live, dead and redundant components of one 1-D mixture (weights and means at one input)."""
    live = sum(1 for w in weights if float(w) >= min_weight)
    return ComponentCensus(n_components=len(list(weights)), live=live,
                           bumps=len(merge_bumps(weights, means, min_weight=min_weight, merge=merge)))
