"""Training loops: the MDN-RNN's (minibatches, Adam, clipping, a schedule, a held-out split) and lesson 1's.

Sequences are split into a training part and a held-out part before training;
each epoch reports the mean NLL per step (nats, summed over latent dimensions)
on both, so the student can compare them with ``bayes_optimal_nll``.

Every loop here ends where training is stable, because lessons print what it
reaches: CPUs differ in the last digits of every float operation, and a
training that still takes large steps at its end turns those digits into a
different printed number. So the learning rate decays to a tiny fraction of
its peak by the last step (``train_model``: one-cycle, ending at 1/250,000 of
``lr``; ``fit_full_batch``: cosine, ending at ``final_lr_fraction`` of ``lr``),
and the figures to print are *evaluated* after training, with no gradients, on
fixed data (``TrainingHistory.final_train_nll``, ``heldout_nll[-1]``, the value
``fit_full_batch`` returns), never the last minibatch's loss.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, List, Optional

import torch

from .loss import mdn_nll_from_logs
from .model import MDNRNN
from .progress import progress_bar

__all__ = ["TrainingHistory", "train_model", "evaluate_nll", "train_lesson_model", "cpu_threads",
           "fit_full_batch", "StepCallback"]

#: Called after every optimiser step as ``on_step(step, model)`` (step counts from 1), e.g. to
#: measure how much an evaluated loss still moves near the end (``benchmarks/training_stability.py``).
StepCallback = Callable[[int, torch.nn.Module], None]


@dataclass
class TrainingHistory:
    """Per-epoch NLL per step on the training and held-out sequences, and the training NLL at the end.

    ``train_nll[e]`` is the mean of epoch e's minibatch losses, each measured *before* its own
    optimiser step, so it mixes weights from the whole epoch: a running average for drawing the
    curve, not a figure to print. ``heldout_nll[e]`` is evaluated after epoch e, without gradients,
    on the held-out sequences. ``final_train_nll`` is evaluated the same way on the training
    sequences after the last step: the training figure to print.
    """

    train_nll: List[float] = field(default_factory=list)
    heldout_nll: List[float] = field(default_factory=list)
    seconds: float = 0.0
    final_train_nll: Optional[float] = None

    @property
    def epochs(self) -> int:
        return len(self.train_nll)


def _check_data(model: MDNRNN, z: torch.Tensor, a: torch.Tensor) -> None:
    if z.dim() != 3 or a.dim() != 3:
        raise ValueError(f"z must be (N, T+1, D) and a (N, T, A); got z {tuple(z.shape)} and a {tuple(a.shape)}")
    if z.shape[0] != a.shape[0] or z.shape[1] != a.shape[1] + 1:
        raise ValueError(f"z needs one more time step than a (z[t+1] is the target for a[t]); "
                         f"got z {tuple(z.shape)} and a {tuple(a.shape)}")
    if z.shape[-1] != model.latent_dim or a.shape[-1] != model.action_dim:
        raise ValueError(f"model expects latent_dim={model.latent_dim}, action_dim={model.action_dim}; "
                         f"data has {z.shape[-1]} and {a.shape[-1]}")


@contextlib.contextmanager
def cpu_threads(n: Optional[int]) -> Iterator[None]:
    """Run a block with torch limited to ``n`` CPU threads, then restore the previous setting.

    The lesson model is tiny, so when other work competes for the cores, threads
    that wait for each other cost more than they gain: on a busy 2-core machine two
    threads measured 5-8x slower than one. ``None`` leaves the setting alone.
    """
    previous = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def evaluate_nll(model: MDNRNN, z: torch.Tensor, a: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean NLL per step of the model on sequences (z, a), teacher-forced from a fresh state."""
    _check_data(model, z, a)
    was_training = model.training
    model.eval()
    device = model.device
    total, count = 0.0, 0
    for start in range(0, z.shape[0], batch_size):
        zb = z[start:start + batch_size].to(device)
        ab = a[start:start + batch_size].to(device)
        out = model(zb[:, :-1], ab)
        nll = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, zb[:, 1:], reduction="none")
        total += float(nll.sum())
        count += nll.numel()
    model.train(was_training)
    return total / count


def train_model(model: MDNRNN, z: torch.Tensor, a: torch.Tensor, *, epochs: int = 60,
                batch_size: int = 256, lr: float = 2e-2, heldout_fraction: float = 0.1,
                clip_norm: float = 1.0, seed: int = 0, progress: bool = True,
                quiet: Optional[bool] = None, cpu_thread_count: Optional[int] = None,
                loss_fn: Optional[Callable[..., torch.Tensor]] = None,
                on_step: Optional[StepCallback] = None) -> TrainingHistory:
    """Fit ``model`` to sequences by maximum likelihood and return the per-epoch history.

    Args:
        model: an ``MDNRNN``; training happens on the device its parameters are on.
        z: latent states (N, T+1, D); a: actions (N, T, A).
        epochs, batch_size, lr: Adam with a one-cycle learning-rate schedule peaking at ``lr`` after
            30 % of the steps and annealing to ``lr / 250,000`` at the last one, so the weights have
            settled when training ends.
        heldout_fraction: share of sequences kept out of training to measure generalisation.
        clip_norm: gradient-norm clipping, which keeps rare huge gradients (a sharp
            component far from a target) from throwing the weights away.
        seed: seeds the split and the minibatch order (model initialisation is up to the caller).
        progress: show a tqdm progress bar; ``quiet=True`` is the same as ``progress=False``.
        cpu_thread_count: torch CPU threads during training (see ``cpu_threads``); ``None`` keeps
            torch's setting (``OMP_NUM_THREADS``). On a quiet 2-core machine two threads were
            faster (4.5 s vs 6.4 s for the defaults); on a machine shared with other work, one
            thread was 5-8x faster. Has no effect on GPU work.
        loss_fn: what to minimise, called as ``loss_fn(pi, mu, sigma, z_next)`` like the exercise's
            ``mdn_loss`` (lesson 4 passes the student's own). ``None`` uses the package's log-space
            NLL. The reported NLLs are always measured with the package's NLL, so a wrong loss shows.
        on_step: optional ``on_step(step, model)`` called after every optimiser step (see ``StepCallback``).
    """
    _check_data(model, z, a)
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be between 0 and 1, got {heldout_fraction}")
    if quiet is not None:
        progress = not quiet
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(z.shape[0], generator=g)
    n_heldout = max(1, int(round(heldout_fraction * z.shape[0])))
    heldout_idx, train_idx = order[:n_heldout], order[n_heldout:]
    device = model.device
    z_train, a_train = z[train_idx].to(device), a[train_idx].to(device)
    z_held, a_held = z[heldout_idx], a[heldout_idx]

    n_train = z_train.shape[0]
    steps_per_epoch = max(1, -(-n_train // batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)

    history = TrainingHistory()
    started = time.perf_counter()
    bar = progress_bar(range(epochs), desc="training", unit="epoch", disable=not progress)
    model.train()
    step = 0
    with cpu_threads(cpu_thread_count if device.type == "cpu" else None):
        for _ in bar:
            perm = torch.randperm(n_train, generator=g).to(device)
            total, count = 0.0, 0
            for start in range(0, n_train, batch_size):
                idx = perm[start:start + batch_size]
                zb, ab = z_train[idx], a_train[idx]
                out = model(zb[:, :-1], ab)
                if loss_fn is None:
                    loss = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, zb[:, 1:])
                else:
                    loss = loss_fn(out.pi, out.mu, out.sigma, zb[:, 1:])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
                optimizer.step()
                schedule.step()
                step += 1
                if on_step is not None:
                    on_step(step, model)
                if loss_fn is not None:        # report the true NLL, whatever was minimised
                    loss = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, zb[:, 1:])
                total += float(loss.detach()) * idx.numel()
                count += idx.numel()
            history.train_nll.append(total / count)
            history.heldout_nll.append(evaluate_nll(model, z_held, a_held))
            bar.set_postfix(train=f"{history.train_nll[-1]:.3f}", heldout=f"{history.heldout_nll[-1]:.3f}")
        history.final_train_nll = evaluate_nll(model, z_train, a_train)
    history.seconds = time.perf_counter() - started
    model.eval()
    return history


def train_lesson_model(seed: int = 0, *, progress: bool = True, device=None,
                       loss_fn: Optional[Callable[..., torch.Tensor]] = None, n_components: int = 5):
    """Train the course's standard model on the standard data: what lessons 4 and 5 both use.

    Seeds everything, generates ``generate_synthetic_data(seed=seed)``, builds
    ``MDNRNN()`` on ``device`` (default: ``get_device()``) and runs ``train_model``
    with its defaults. Returns ``(model, history, z, a)``; the data stay on the CPU.
    Each lesson runs on its own in a fresh runtime, so the dreaming lesson calls
    this again rather than depending on a file the training lesson wrote.
    ``loss_fn`` is passed to ``train_model`` (e.g. the student's ``mdn_loss``);
    ``n_components=1`` trains the single-Gaussian model lesson 4 compares with.
    """
    from .data import generate_synthetic_data
    from .device import get_device, set_seed

    set_seed(seed)
    z, a = generate_synthetic_data(seed=seed)
    model = MDNRNN(n_components=n_components).to(device or get_device())
    history = train_model(model, z, a, seed=seed, progress=progress, loss_fn=loss_fn)
    return model, history, z, a


def fit_full_batch(model: torch.nn.Module, loss_of: Callable[[torch.nn.Module], torch.Tensor], *,
                   steps: int = 600, lr: float = 1e-2, final_lr_fraction: float = 1e-3,
                   on_step: Optional[StepCallback] = None) -> float:
    """Minimise ``loss_of(model)`` (a scalar on the whole data set) with Adam; return it evaluated at the end.

    Lesson 1 fits its two small models with this. The learning rate follows a cosine from
    ``lr`` down to ``lr * final_lr_fraction`` at the last step: with a constant ``lr`` of 1e-2
    the mixture fit never settles (over its last 60 steps the loss swung between -1.25 and
    -0.51 under ``ATEN_CPU_CAPABILITY=default`` on one thread, while it stayed at -1.25 with the
    CPU's own kernels), so the number printed depended on where the last step happened to land. The returned value is ``loss_of(model)`` computed
    once more after training, with no gradients: the loss of the weights the lesson goes on to use.
    """
    if steps < 1 or lr <= 0 or not 0.0 < final_lr_fraction <= 1.0:
        raise ValueError(f"need steps >= 1, lr > 0 and 0 < final_lr_fraction <= 1; "
                         f"got steps={steps}, lr={lr}, final_lr_fraction={final_lr_fraction}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=lr * final_lr_fraction)
    model.train()
    for step in range(1, steps + 1):
        loss = loss_of(model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if on_step is not None:
            on_step(step, model)
    model.eval()
    with torch.no_grad():
        return float(loss_of(model))
