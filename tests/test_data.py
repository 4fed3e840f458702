"""The synthetic world: statistics of the generator and the exact NLL floor."""
import math

import pytest
import torch

from mdn_course import WORLD, bayes_optimal_nll, generate_synthetic_data, true_next_state_mixture


def test_shapes_and_reproducibility_without_touching_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    z1, a1 = generate_synthetic_data(50, seq_len=8, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    z2, a2 = generate_synthetic_data(50, seq_len=8, generator=torch.Generator().manual_seed(5))
    assert z1.shape == (50, 9, 2) and a1.shape == (50, 8, 2)
    assert torch.equal(z1, z2) and torch.equal(a1, a2)
    assert not torch.equal(z1, generate_synthetic_data(50, seq_len=8, seed=6)[0])


def residuals(z, a):
    """z[t+1] - z[t] - 0.3 tanh(a[t]): noise on dim 0, noise plus fork push on dim 1."""
    return z[:, 1:] - z[:, :-1] - WORLD.step_scale * torch.tanh(a)


def test_noise_scale_and_fork_frequency():
    z, a = generate_synthetic_data(4000, seq_len=20, seed=1)
    r = residuals(z, a)
    forked = z[:, :-1, 0] > WORLD.fork_threshold
    # dimension 0 is pure noise: std 0.05 within sampling error (n = 80k)
    assert r[..., 0].std().item() == pytest.approx(0.05, rel=0.02)
    assert r[..., 0].mean().abs().item() < 0.002
    # dimension 1 without the fork: pure noise
    assert r[..., 1][~forked].std().item() == pytest.approx(0.05, rel=0.02)
    # with the fork: +0.4 or -0.4, half the time each (binomial sd ~ 0.0025 for this n)
    pushed = r[..., 1][forked]
    assert pushed.numel() > 10_000
    up = (pushed > 0).float().mean().item()
    assert up == pytest.approx(0.5, abs=0.015)
    assert (pushed.abs() - 0.4).std().item() == pytest.approx(0.05, rel=0.05)


def test_no_fork_at_or_left_of_threshold():
    z, a = generate_synthetic_data(2000, seq_len=10, seed=2)
    r = residuals(z, a)[..., 1]
    assert r[z[:, :-1, 0] <= WORLD.fork_threshold].abs().max().item() < 0.35  # 7 sigma, never 0.4


def test_bayes_floor_closed_form_without_fork():
    """Left of the fork every step is N(mean, 0.05^2) in both dims: NLL = E[x^2]/2s^2 + 2 log(s sqrt(2 pi))."""
    z, a = generate_synthetic_data(3000, seq_len=1, seed=3)
    keep = z[:, 0, 0] <= WORLD.fork_threshold
    z, a = z[keep], a[keep]
    r = residuals(z.double(), a.double())
    expected = float((r ** 2).sum(-1).mean() / (2 * 0.05 ** 2) + 2 * math.log(0.05 * math.sqrt(2 * math.pi)))
    assert bayes_optimal_nll(z, a) == pytest.approx(expected, rel=1e-9)


def test_bayes_floor_agrees_with_monte_carlo_entropy():
    """The floor on many samples estimates the true conditional entropy; compute it independently by Monte Carlo."""
    g = torch.Generator().manual_seed(4)
    z, a = generate_synthetic_data(3000, seq_len=20, seed=4)
    floor = bayes_optimal_nll(z, a)
    # Independent estimate: for each visited state draw fresh next states from the true mixture and
    # average their -log density (one Gaussian per dim; dim 1 a 50/50 mixture right of the fork).
    z_t, a_t = z[:, :-1].reshape(-1, 2).double(), a.reshape(-1, 2).double()
    pi, mu, sigma = true_next_state_mixture(z_t, a_t)
    comp = (torch.rand(z_t.shape, generator=g) < 0.5).long().unsqueeze(-1)
    draw = mu.gather(-1, comp).squeeze(-1) + 0.05 * torch.randn(z_t.shape, generator=g, dtype=torch.float64)
    log_comp = -0.5 * ((draw.unsqueeze(-1) - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    mc = float(-torch.logsumexp(torch.log(pi) + log_comp, -1).sum(-1).mean())
    assert floor == pytest.approx(mc, abs=0.02)


def test_bad_shapes_rejected():
    z, a = generate_synthetic_data(4, seq_len=3, seed=0)
    with pytest.raises(ValueError, match="T\\+1"):
        bayes_optimal_nll(z[:, 1:], a)
