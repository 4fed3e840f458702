"""Figures the lessons draw from a trained model: loss curve, predicted mixture, trajectories, episodes.

Each helper draws on a given matplotlib Axes (or a new one), titles and labels
it, adds a legend, and returns the Axes so a notebook can adjust it further.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .data import WORLD
from .dream import predict_next
from .figures import COLOURS, CYCLE
from .mixture import plot_mixture
from .training import TrainingHistory

__all__ = ["plot_training_curve", "plot_predicted_mixture", "plot_trajectories", "plot_episode_heights",
           "plot_gap_bars"]


def _axes(ax, figsize=(8, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_training_curve(history: TrainingHistory, bayes_floor: Optional[float] = None, *, ax=None,
                        title: str = "MDN-RNN training: NLL per step"):
    """Training and held-out NLL per epoch, with the Bayes-optimal floor as a dashed line."""
    ax = _axes(ax)
    epochs = np.arange(1, history.epochs + 1)
    ax.plot(epochs, history.train_nll, color=COLOURS.real, linestyle="-", label="training NLL")
    ax.plot(epochs, history.heldout_nll, color=COLOURS.dreamed, linestyle=(0, (4, 2)), label="held-out NLL")
    if bayes_floor is not None:
        ax.axhline(bayes_floor, color=COLOURS.truth, linestyle="--",
                   label=f"Bayes-optimal floor ({bayes_floor:.2f})")
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood (nats per step)")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax


def plot_predicted_mixture(model, z_t, a_t=None, *, dim: int = 1, ax=None, title: Optional[str] = None,
                           x: Optional[np.ndarray] = None, min_weight: float = 0.02):
    """The model's predicted density for one dimension of z[t+1] after one step from ``z_t``.

    Uses a fresh LSTM state and zero action by default. Components with weight
    below ``min_weight`` are not shaded (they are still in the total).
    """
    out = predict_next(model, z_t, a_t)
    pi = out.pi[0, dim].double().cpu().numpy()
    mu = out.mu[0, dim].double().cpu().numpy()
    sigma = out.sigma[0, dim].double().cpu().numpy()
    pi = pi / pi.sum()
    state = ", ".join(f"{v:.1f}" for v in torch.as_tensor(z_t).reshape(-1).tolist())
    if x is None:
        x = np.linspace(-1.0, 1.0, 600) + float(torch.as_tensor(z_t).reshape(-1)[dim])
    return plot_mixture(pi, mu, sigma, ax=_axes(ax), x=x, min_weight=min_weight,
                        title=title or f"Predicted z[{dim}] at the next step from z = [{state}]",
                        xlabel=f"next z[{dim}]")


def plot_trajectories(real: Optional[torch.Tensor] = None, dreamed: Optional[torch.Tensor] = None, *,
                      ax=None, title: str = "Trajectories in the 2-D world", max_each: int = 50,
                      show_fork: bool = True):
    """Real (blue, solid, round starts) and dreamed (vermillion, dashed, square starts) trajectories.

    Each is (N, T, 2); the fork line z[0] = 0.5 is drawn dashed in orange.
    """
    ax = _axes(ax, figsize=(6, 6))
    for data, color, style, marker, label in ((real, COLOURS.real, "-", "o", "real"),
                                              (dreamed, COLOURS.dreamed, "--", "s", "dreamed")):
        if data is None:
            continue
        arr = torch.as_tensor(data).detach().cpu().numpy()[:max_each]
        for i, traj in enumerate(arr):
            ax.plot(traj[:, 0], traj[:, 1], color=color, alpha=0.35, linewidth=1, linestyle=style,
                    label=f"{label} ({len(arr)})" if i == 0 else None)
        ax.scatter(arr[:, 0, 0], arr[:, 0, 1], color=color, s=12, marker=marker, zorder=3)
    if show_fork:
        ax.axvline(WORLD.fork_threshold, color=COLOURS.fork, linestyle="--", label="fork: z[0] = 0.5")
    ax.set_title(title)
    ax.set_xlabel("z[0]")
    ax.set_ylabel("z[1]")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return ax


def plot_episode_heights(heights: torch.Tensor, alive: torch.Tensor, crashed: torch.Tensor, *, ax=None,
                         color: str = "#88CCEE", linestyle: str = "-", label: str = "episodes",
                         edge: Optional[float] = 1.0, title: str = "Height against time",
                         ylabel: str = "height z[1]"):
    """Episodes' heights against the step, each drawn up to the last state it reached, a cross where it fell.

    ``heights`` (E, T+1), ``alive`` (E, T) (1 while the episode was running, as in ``Rollouts``) and
    ``crashed`` (E,) bool, for one controller. ``edge`` draws the cliff's edge (None: no line).
    """
    ax = _axes(ax, figsize=(7, 4.5))
    heights, alive, crashed = (torch.as_tensor(t).detach().cpu() for t in (heights, alive, crashed))
    for i, path in enumerate(heights):
        end = int(alive[i].sum().item())                     # the last state the episode reached
        ax.plot(range(end + 1), path[:end + 1].numpy(), color=color, linestyle=linestyle, alpha=0.5,
                label=f"{label} ({len(heights)} episodes)" if i == 0 else None)
        if crashed[i]:
            ax.plot(end, float(path[end]), "x", color="black", markersize=6,
                    label="a fall" if not ax.get_legend_handles_labels()[1].count("a fall") else None)
    if edge is not None and "cliff edge" not in ax.get_legend_handles_labels()[1]:
        ax.axhline(edge, color="black", linewidth=2, label="cliff edge")
    ax.set(title=title, xlabel="step", ylabel=ylabel)
    ax.legend(loc="lower right", fontsize=8)
    return ax


def plot_gap_bars(names: Sequence[str], groups: dict, *, ax=None, title: str, ylabel: str,
                  reference: Optional[tuple] = None):
    """Grouped bars, one group per model: ``groups`` maps a series label to one value per name.

    Each series gets its own colour *and* hatch. ``reference=(value, label)`` adds a dotted
    horizontal line. The y axis gets headroom and the legend sits in it, above every bar, so it
    hides none (``tests/test_figures.py`` checks that on the lesson's numbers).
    """
    ax = _axes(ax, figsize=(9, 4.5))
    x = np.arange(len(names))
    width = 0.8 / max(1, len(groups))
    hatches = ("", "//", "..", "xx")
    tallest = 0.0
    for i, (label, values) in enumerate(groups.items()):
        values = [float(v) for v in values]
        if len(values) != len(names):
            raise ValueError(f"series {label!r} has {len(values)} values for {len(names)} names")
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, values, width=width, color=CYCLE[i % len(CYCLE)],
               hatch=hatches[i % len(hatches)], edgecolor="white", label=label)
        tallest = max(tallest, max(values))
    if reference is not None:
        value, label = reference
        ax.axhline(value, color=COLOURS.truth, linestyle=":", label=label)
        tallest = max(tallest, float(value))
    ax.set_xticks(x, names)
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.45 * tallest)
    ax.set(title=title, xlabel="model", ylabel=ylabel)
    ax.legend(loc="upper center", ncols=min(3, len(groups) + (reference is not None)), fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    return ax
