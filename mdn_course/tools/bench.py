"""Benchmarks behind ``python -m mdn_course bench`` and the scripts in benchmarks/.

Every figure is measured side by side in one run on the same machine, because
absolute seconds on a shared machine are noise; the ratios are what count.

* training: the default recipe against the reference lesson's recipe (80 epochs
  on 500 sequences, batch 64, Adam 1e-3, hidden 64, K=5, absolute-state head
  with unbounded exp(sigma)); held-out NLL on fresh data against the Bayes floor;
  the predicted distribution of z[1] at z = [1, 0]; peak memory; time vs data size.
* dreaming: batched ``dream`` against a one-trajectory-at-a-time loop that samples
  each dimension with NumPy, as the reference lesson does.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from typing import Dict, List

import numpy as np
import torch
from torch import nn

from ..data import bayes_optimal_nll, generate_synthetic_data
from ..device import describe_device, get_device, set_seed
from ..dream import dream, predict_next
from ..loss import mdn_nll_from_logs
from ..mixture import mixture_pdf
from ..model import MDNRNN, MixtureOutput
from ..training import evaluate_nll, train_model

__all__ = ["ReferenceRecipeModel", "train_reference_recipe", "find_modes", "bench_training", "bench_dream", "main"]


class ReferenceRecipeModel(nn.Module):
    """The reference lesson's architecture: LSTM, three linear heads, softmax weights, exp(sigma), absolute means."""

    def __init__(self, latent_dim=2, action_dim=2, hidden_dim=64, k=5):
        super().__init__()
        self.latent_dim, self.action_dim, self.k = latent_dim, action_dim, k
        self.lstm = nn.LSTM(latent_dim + action_dim, hidden_dim, batch_first=True)
        self.pi = nn.Linear(hidden_dim, latent_dim * k)
        self.mu = nn.Linear(hidden_dim, latent_dim * k)
        self.sigma = nn.Linear(hidden_dim, latent_dim * k)

    @property
    def device(self):
        return next(self.parameters()).device

    def forward(self, z, a, hidden=None):
        h, hidden = self.lstm(torch.cat([z, a], -1), hidden)
        shape = (*h.shape[:-1], self.latent_dim, self.k)
        log_pi = torch.log_softmax(self.pi(h).view(shape), -1)
        log_sigma = self.sigma(h).view(shape)
        return MixtureOutput(log_pi.exp(), self.mu(h).view(shape), log_sigma.exp(), hidden, log_pi, log_sigma)


def train_reference_recipe(z, a, epochs=80, batch_size=64, lr=1e-3, seed=0):
    """Train ``ReferenceRecipeModel`` the way the reference lesson does (no schedule, no held-out split)."""
    torch.manual_seed(seed)
    model = ReferenceRecipeModel()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(z.shape[0])
        for s in range(0, z.shape[0], batch_size):
            idx = perm[s:s + batch_size]
            out = model(z[idx, :-1], a[idx])
            loss = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, z[idx, 1:])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    return model


def find_modes(model, z_t, dim=1, grid=None) -> List[float]:
    """Locations of the local maxima (above 10% of the peak) of the model's predicted density of z[t+1][dim]."""
    out = predict_next(model, z_t)
    pi, mu, sigma = (t[0, dim].double().cpu().numpy() for t in (out.pi, out.mu, out.sigma))
    x = np.linspace(-1.5, 1.5, 3001) if grid is None else grid
    p = mixture_pdf(x, pi / pi.sum(), mu, sigma)
    peaks = (p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:]) & (p[1:-1] > 0.1 * p.max())
    return [float(v) for v in x[1:-1][peaks]]


def _peak_rss_mib() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 2**20 if sys.platform == "darwin" else usage / 2**10


def bench_training(seed: int = 0, scaling: bool = True) -> Dict[str, float]:
    """Default recipe vs reference recipe, bimodality at the fork, peak memory, time vs data size."""
    device = get_device()
    print(f"device: {describe_device(device)}; torch {torch.__version__}")
    z_test, a_test = generate_synthetic_data(4000, seed=10_000 + seed)
    floor = bayes_optimal_nll(z_test, a_test)

    z_ref, a_ref = generate_synthetic_data(500, seed=seed)
    started = time.perf_counter()
    reference = train_reference_recipe(z_ref, a_ref, seed=seed)
    ref_seconds = time.perf_counter() - started
    ref_gap = evaluate_nll(reference, z_test, a_test) - floor

    set_seed(seed)
    z, a = generate_synthetic_data(seed=seed)
    model = MDNRNN().to(device)
    rss_before = _peak_rss_mib()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    history = train_model(model, z, a, seed=seed, progress=False)
    ours_gap = evaluate_nll(model, z_test, a_test) - floor
    modes = find_modes(model, torch.tensor([1.0, 0.0]))
    ref_modes = find_modes(reference, torch.tensor([1.0, 0.0]))

    print("\n== training: default recipe vs the reference lesson's recipe (same machine, same run, "
          f"{torch.get_num_threads()} CPU thread(s) each)")
    print(f"Bayes floor on 4000 fresh sequences: {floor:.4f} nats/step")
    print(f"{'recipe':<28}{'seconds':>9}{'gap to floor':>15}{'modes of z[1] at z=[1,0]':>34}")
    print(f"{'reference (80 ep, 500 seq)':<28}{ref_seconds:9.1f}{ref_gap:15.4f}{str([round(m, 2) for m in ref_modes]):>34}")
    print(f"{'default train_model':<28}{history.seconds:9.1f}{ours_gap:15.4f}{str([round(m, 2) for m in modes]):>34}")
    ratio = history.seconds / ref_seconds
    bimodal = len(modes) == 2 and abs(modes[0] + 0.4) < 0.1 and abs(modes[1] - 0.4) < 0.1
    print(f"time ratio default/reference: {ratio:.2f}x (bar: <= 3x)   gap (bar: <= 0.05): "
          f"{'PASS' if ours_gap <= 0.05 else 'FAIL'}   bimodal near +-0.4: {'PASS' if bimodal else 'FAIL'}")
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else _peak_rss_mib()
    tensors = (sum(p.numel() * p.element_size() for p in model.parameters()) * 4  # weights, grads, 2 Adam moments
               + z.numel() * z.element_size() + a.numel() * a.element_size()) / 2**20
    print(f"peak memory: {peak:.0f} MiB ({'CUDA allocated' if device.type == 'cuda' else 'process peak RSS'}; "
          f"{rss_before:.0f} MiB before training, mostly the torch import); parameters, gradients, "
          f"Adam state and data: {tensors:.1f} MiB")
    result = {"floor": floor, "reference_seconds": ref_seconds, "reference_gap": ref_gap,
              "default_seconds": history.seconds, "default_gap": ours_gap, "time_ratio": ratio,
              "bimodal": float(bimodal), "peak_mib": peak}
    if scaling:
        print("\n== training time vs number of sequences (5 epochs each, default batch and model)")
        print(f"{'sequences':>10}{'seconds':>10}{'seconds per 1000 seq-epochs':>30}")
        for n in (1000, 2000, 4000, 8000):
            zs, as_ = generate_synthetic_data(n, seed=seed)
            set_seed(seed)
            h = train_model(MDNRNN().to(device), zs, as_, epochs=5, progress=False)
            print(f"{n:>10}{h.seconds:>10.2f}{h.seconds / (5 * n * 0.9) * 1000:>30.3f}")
    return result


def reference_style_dream(model, z_start, actions, temperature=1.0, rng=None):
    """One trajectory, one step at a time, sampling each dimension with NumPy (the reference lesson's way)."""
    rng = rng or np.random.default_rng(0)
    z = torch.as_tensor(z_start, dtype=torch.float32).reshape(1, 1, -1)
    hidden, traj = None, [z.reshape(-1).numpy()]
    with torch.no_grad():
        for t in range(actions.shape[0]):
            out = model(z, actions[t].reshape(1, 1, -1), hidden)
            hidden = out.hidden
            pi, mu, sigma = (x[0, 0].numpy().astype(np.float64) for x in (out.pi, out.mu, out.sigma))
            nxt = np.zeros(pi.shape[0])
            for d in range(pi.shape[0]):
                k = rng.choice(pi.shape[1], p=pi[d] / pi[d].sum())
                nxt[d] = rng.normal(mu[d, k], sigma[d, k] * temperature)
            traj.append(nxt)
            z = torch.tensor(nxt, dtype=torch.float32).reshape(1, 1, -1)
    return np.array(traj)


def bench_dream(n: int = 1000, steps: int = 30, loop_trajectories: int = 30) -> Dict[str, float]:
    """Trajectory-steps per second: batched ``dream`` vs the one-at-a-time NumPy loop (CPU, same model)."""
    set_seed(0)
    model = MDNRNN().eval()
    actions = torch.zeros(steps, 2)
    dream(model, torch.zeros(2), actions, n=8)  # warm-up
    started = time.perf_counter()
    dream(model, torch.zeros(2), actions, n=n)
    batched = n * steps / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(loop_trajectories):
        reference_style_dream(model, np.zeros(2), actions)
    looped = loop_trajectories * steps / (time.perf_counter() - started)
    print(f"\n== dreaming {steps} steps: batched n={n} vs a one-at-a-time loop ({loop_trajectories} trajectories)")
    print(f"batched: {batched:,.0f} trajectory-steps/s   loop: {looped:,.0f} trajectory-steps/s   "
          f"speed-up: {batched / looped:.0f}x (bar: >= 100x)")
    return {"batched_steps_per_s": batched, "loop_steps_per_s": looped, "speedup": batched / looped}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mdn_course bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["training", "dream"], help="run one benchmark")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-scaling", action="store_true", help="skip the time-vs-data-size table")
    args = parser.parse_args(argv)
    if args.only in (None, "training"):
        bench_training(args.seed, scaling=not args.no_scaling)
    if args.only in (None, "dream"):
        bench_dream()
    return 0
