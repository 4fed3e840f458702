"""One-dimensional Gaussian mixtures in NumPy, for the first lesson's pictures.

These are deliberately plain NumPy: the student meets the formula before the
network, and the plotting helpers reuse the same functions to draw what the
trained model predicts.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["gaussian_pdf", "mixture_pdf", "plot_mixture"]

_SQRT_2PI = np.sqrt(2.0 * np.pi)
#: Each component's shading also gets its own hatch, so components stay apart without colour.
_HATCHES = (None, "//", "\\\\", "..", "xx", "--", "++", "oo")


def gaussian_pdf(x, mu, sigma):
    """Density of N(mu, sigma**2) at x (broadcasting); sigma must be positive."""
    sigma = np.asarray(sigma, dtype=float)
    if np.any(sigma <= 0):
        raise ValueError("sigma must be positive: it is a standard deviation, not a variance or a log")
    x = np.asarray(x, dtype=float)
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * _SQRT_2PI)


def _as_weights(pis) -> np.ndarray:
    pis = np.asarray(pis, dtype=float)
    if np.any(pis < 0) or not np.isclose(pis.sum(), 1.0, atol=1e-6):
        raise ValueError(f"mixture weights must be non-negative and sum to 1, got {pis.tolist()}")
    return pis


def mixture_pdf(x, pis: Sequence[float], mus: Sequence[float], sigmas: Sequence[float]) -> np.ndarray:
    """Density of the mixture sum_k pi_k N(x | mu_k, sigma_k**2) at each x."""
    pis = _as_weights(pis)
    mus = np.asarray(mus, dtype=float)
    sigmas = np.asarray(sigmas, dtype=float)
    if not (pis.shape == mus.shape == sigmas.shape):
        raise ValueError(f"pis, mus and sigmas need one entry per component; got {pis.shape}, {mus.shape}, {sigmas.shape}")
    x = np.asarray(x, dtype=float)
    return np.sum(pis * gaussian_pdf(x[..., None], mus, sigmas), axis=-1)


def plot_mixture(pis, mus, sigmas, *, ax=None, title: str = "A mixture of Gaussians",
                 x=None, xlabel: str = "next state z", min_weight: float = 0.0):
    """Draw each weighted component shaded and the total density as a line.

    Components whose weight is below ``min_weight`` are left out of the shading
    (they still count in the total). Component k always takes the k-th colour of the
    colour cycle and the k-th hatch, so the same component looks the same in every panel.
    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    pis = _as_weights(pis)
    mus = np.asarray(mus, dtype=float)
    sigmas = np.asarray(sigmas, dtype=float)
    if x is None:
        lo = float(np.min(mus - 4 * sigmas))
        hi = float(np.max(mus + 4 * sigmas))
        x = np.linspace(lo, hi, 600)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for k, (p, m, s) in enumerate(zip(pis, mus, sigmas)):
        if p < min_weight:
            continue
        colour = colours[k % len(colours)]
        ax.fill_between(x, p * gaussian_pdf(x, m, s), alpha=0.35, facecolor=colour, edgecolor=colour,
                        hatch=_HATCHES[k % len(_HATCHES)],
                        label=f"component {k + 1}: π={p:.2f}, μ={m:+.2f}, σ={s:.2f}")
    ax.plot(x, mixture_pdf(x, pis, mus, sigmas), color="black", linewidth=2, label="mixture density")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("probability density")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3)
    return ax
