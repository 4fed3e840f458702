"""Temperature, measured: how it changes a mixture's likelihood and how decisively dreams pick a branch.

Two questions the dreaming lesson raises and answers with these helpers:

* Does a branch get *chosen*? ``branch_report`` reads a batch of dreams that
  start at the fork and records which way each step went. Dreams whose forks
  are fair coins show almost as many distinct up/down patterns as chance
  allows; dreams that commit to the likelier branch repeat a few patterns
  (one, at tau = 0). It also counts steps of a size the world never takes,
  which is how tau > 1 shows.
* Could the temperature be *learned*? ``tempered_log_params`` applies the
  World Models rule (logits / tau, sigma * sqrt(tau)) to a mixture, and
  ``temperature_nll_curve`` measures a trained model's NLL on data for a range
  of temperatures: fitting tau by likelihood is fitting it to the data.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
from torch.nn import functional as F

from .data import WORLD
from .loss import mdn_nll_from_logs

__all__ = ["tempered_log_params", "temperature_nll_curve", "branch_report"]


def tempered_log_params(log_pi: torch.Tensor, log_sigma: torch.Tensor, tau: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """The mixture ``sample_mixture`` draws from at temperature ``tau`` (> 0), in log space.

    Weights: softmax(log_pi / tau); standard deviations: sigma * sqrt(tau).
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0 for a density (tau = 0 is a point mass), got {tau}")
    return F.log_softmax(log_pi / tau, dim=-1), log_sigma + 0.5 * math.log(tau)


@torch.no_grad()
def temperature_nll_curve(model, z: torch.Tensor, a: torch.Tensor, taus: Sequence[float]) -> Dict[float, float]:
    """Mean NLL per step of ``model`` on (z, a) with its mixtures tempered at each tau.

    One forward pass (teacher-forced from a fresh state), then the NLL for every tau.
    The tau with the lowest value is the maximum-likelihood temperature for that data.
    """
    model.eval()
    out = model(z[:, :-1].to(model.device), a.to(model.device))
    target = z[:, 1:].to(model.device)
    curve = {}
    for tau in taus:
        log_pi, log_sigma = tempered_log_params(out.log_pi, out.log_sigma, float(tau))
        curve[float(tau)] = float(mdn_nll_from_logs(log_pi, out.mu, log_sigma, target))
    return curve


def branch_report(paths: torch.Tensor, dim: int = 1, step: float = WORLD.fork_offset,
                  tolerance: float = 0.15) -> Dict[str, float]:
    """How dreams (n, T + 1, D) that start at the fork chose their branches, step by step.

    Returns ``share_up`` (steps whose change in ``z[dim]`` is positive), ``distinct_patterns``
    (different up/down sequences among the n dreams), ``distinct_patterns_by_chance`` (the
    expected count if every step were an independent fair coin: 2**T * (1 - (1 - 2**-T)**n))
    and ``off_branch`` (steps whose size is more than ``tolerance`` away from the world's
    fork ``step``: moves the real world never makes at the fork).
    """
    if paths.dim() != 3 or paths.shape[1] < 2:
        raise ValueError(f"paths must be (n, T + 1, D) with T >= 1, got {tuple(paths.shape)}")
    change = paths[:, 1:, dim] - paths[:, :-1, dim]                       # (n, T)
    up = change > 0
    n, steps = up.shape
    patterns = 2.0 ** steps
    return {"share_up": up.float().mean().item(),
            "distinct_patterns": float(torch.unique(up, dim=0).shape[0]),
            "distinct_patterns_by_chance": patterns * (1.0 - (1.0 - 1.0 / patterns) ** n),
            "off_branch": ((change.abs() - step).abs() > tolerance).float().mean().item()}
