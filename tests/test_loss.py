"""mdn_loss pinned to closed forms, a float64 brute force, and the numerical extremes."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mdn_course import mdn_loss, mdn_nll_from_logs


def brute_force_nll(pi, mu, sigma, z):
    """Direct float64 sum over components, no logsumexp: only valid away from underflow."""
    p, m, s, t = (x.double().numpy() for x in (pi, mu, sigma, z))
    dens = p * np.exp(-0.5 * ((t[..., None] - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
    return float(-np.log(dens.sum(-1)).sum(-1).mean())


def random_mixture(seed, lead=(16,), d=3, k=4):
    g = torch.Generator().manual_seed(seed)
    pi = torch.softmax(torch.randn(*lead, d, k, generator=g), -1)
    mu = torch.randn(*lead, d, k, generator=g)
    sigma = torch.exp(torch.randn(*lead, d, k, generator=g) * 0.3)
    z = torch.randn(*lead, d, generator=g)
    return pi, mu, sigma, z


def test_single_component_equals_normal_log_prob():
    pi, mu, sigma, z = random_mixture(0, lead=(50,), d=2, k=1)
    expected = -torch.distributions.Normal(mu[..., 0], sigma[..., 0]).log_prob(z).sum(-1).mean()
    assert torch.allclose(mdn_loss(pi, mu, sigma, z), expected, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 4), k=st.integers(1, 6), n=st.integers(1, 20))
def test_matches_float64_brute_force(seed, d, k, n):
    pi, mu, sigma, z = random_mixture(seed, lead=(n,), d=d, k=k)
    assert mdn_loss(pi, mu, sigma, z).item() == pytest.approx(brute_force_nll(pi, mu, sigma, z), rel=1e-4, abs=1e-4)


def test_returns_scalar_and_averages_over_all_leading_dims():
    pi, mu, sigma, z = random_mixture(1, lead=(3, 5))
    loss = mdn_loss(pi, mu, sigma, z)
    assert loss.dim() == 0
    flat = mdn_loss(*(t.reshape(15, *t.shape[2:]) for t in (pi, mu, sigma, z)))
    assert torch.allclose(loss, flat)
    one = mdn_loss(*(t[0, 0] for t in (pi, mu, sigma, z)))  # no leading dims at all
    assert one.dim() == 0 and torch.isfinite(one)


@pytest.mark.parametrize("sigma_value", [1e-4, 1e-2, 1.0, 1e3])
@pytest.mark.parametrize("distance", [0.0, 1.0, 1e3])
def test_finite_values_and_gradients_at_extremes(sigma_value, distance):
    pi, mu, _, _ = random_mixture(2, lead=(8,), d=2, k=3)
    pi = pi.clone()
    pi[..., 0] = 0.0  # zero weights must not produce NaN
    pi = pi / pi.sum(-1, keepdim=True)
    sigma = torch.full_like(mu, sigma_value, requires_grad=True)
    mu = mu.clone().requires_grad_(True)
    pi.requires_grad_(True)
    z = mu.detach().max(-1).values + distance
    loss = mdn_loss(pi, mu, sigma, z)
    assert torch.isfinite(loss)
    loss.backward()
    for t in (pi, mu, sigma):
        assert torch.isfinite(t.grad).all()


def test_far_target_exact_value_where_naive_sum_underflows():
    mu = torch.zeros(1, 1, 2)
    sigma = torch.full((1, 1, 2), 1e-4)
    pi = torch.tensor([[[0.5, 0.5]]])
    z = torch.tensor([[1e3]])
    expected = 0.5 * (1e3 / 1e-4) ** 2 + math.log(1e-4) + 0.5 * math.log(2 * math.pi)
    assert mdn_loss(pi, mu, sigma, z).item() == pytest.approx(expected, rel=1e-5)


def test_log_space_version_agrees():
    pi, mu, sigma, z = random_mixture(3)
    assert torch.allclose(mdn_loss(pi, mu, sigma, z), mdn_nll_from_logs(pi.log(), mu, sigma.log(), z), atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (lambda pi, mu, sigma, z: (pi, mu[..., :2], sigma, z), "mu must have the same shape as pi"),
    (lambda pi, mu, sigma, z: (pi, mu, sigma.transpose(-1, -2), z), "sigma must have the same shape as pi"),
    (lambda pi, mu, sigma, z: (pi, mu, sigma, z[:, 0]), "z_next needs the latent dimension"),
    (lambda pi, mu, sigma, z: (pi, mu, sigma, z.unsqueeze(-1)), "drop the trailing 1"),
    (lambda pi, mu, sigma, z: (pi, mu, sigma, z.numpy()), "z_next must be a torch.Tensor"),
])
def test_wrong_shapes_name_the_tensor_and_the_expected_shape(bad, message):
    args = bad(*random_mixture(4, lead=(6,), d=3, k=4))
    with pytest.raises((ValueError, TypeError), match=message):
        mdn_loss(*args)
