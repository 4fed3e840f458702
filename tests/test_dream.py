"""Dreaming: input forms, temperature limits, spread, reproducibility, sampling moments."""
import math

import pytest
import torch

from mdn_course import MDNRNN, dream, sample_mixture, set_seed


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MDNRNN()


@pytest.mark.parametrize("z_start, n", [
    (torch.zeros(2), 1), (torch.zeros(2), 7), (torch.zeros(1, 2), 7), (torch.zeros(7, 2), 7),
    ([0.5, 0.0], 3),
])
def test_every_start_form_gives_n_trajectories(model, z_start, n):
    traj = dream(model, z_start, torch.zeros(5, 2), n=n)
    assert traj.shape == (n, 6, 2)
    assert torch.allclose(traj[:, 0], torch.as_tensor(z_start, dtype=torch.float32).reshape(-1, 2).expand(n, 2))


def test_per_dream_actions(model):
    assert dream(model, torch.zeros(2), torch.zeros(4, 5, 2), n=4).shape == (4, 6, 2)


@pytest.mark.parametrize("z_start, actions, n, message", [
    (torch.zeros(3), torch.zeros(5, 2), 1, r"z_start must have shape \(2,\).*got \(3,\)"),
    (torch.zeros(4, 2), torch.zeros(5, 2), 3, "4 rows but n=3"),
    (torch.zeros(2), torch.zeros(5, 3), 1, r"actions must have shape \(T, 2\)"),
    (torch.zeros(2), torch.zeros(2, 5, 2), 3, r"actions must have shape"),
])
def test_bad_inputs_get_clear_errors(model, z_start, actions, n, message):
    with pytest.raises(ValueError, match=message):
        dream(model, z_start, actions, n=n)


def test_zero_temperature_follows_most_likely_component_mean():
    log_pi = torch.log(torch.tensor([[[0.2, 0.7, 0.1], [0.6, 0.3, 0.1]]]))
    mu = torch.tensor([[[-1.0, 2.0, 5.0], [3.0, -4.0, 0.0]]])
    sigma = torch.ones_like(mu)
    assert torch.equal(sample_mixture(log_pi, mu, sigma, 0.0), torch.tensor([[2.0, 3.0]]))
    # and tiny positive temperatures converge to it
    near = sample_mixture(log_pi.expand(2000, 2, 3), mu.expand(2000, 2, 3), sigma.expand(2000, 2, 3), 1e-4)
    assert torch.allclose(near, torch.tensor([2.0, 3.0]).expand(2000, 2), atol=0.05)


def test_unit_temperature_reproduces_mixture_moments():
    n = 200_000
    log_pi = torch.log(torch.tensor([0.3, 0.7])).expand(n, 1, 2)
    mu = torch.tensor([-1.0, 2.0]).expand(n, 1, 2)
    sigma = torch.tensor([0.5, 0.2]).expand(n, 1, 2)
    x = sample_mixture(log_pi, mu, sigma, 1.0, torch.Generator().manual_seed(0))[:, 0]
    mean = 0.3 * -1 + 0.7 * 2
    var = 0.3 * (0.25 + 1) + 0.7 * (0.04 + 4) - mean ** 2
    assert x.mean().item() == pytest.approx(mean, abs=0.01)
    assert x.var().item() == pytest.approx(var, rel=0.01)
    assert (x < 0.5).float().mean().item() == pytest.approx(0.3, abs=0.005)


def test_temperature_scales_variance_and_sharpens_weights():
    n = 100_000
    one = sample_mixture(torch.zeros(n, 1, 1), torch.zeros(n, 1, 1), torch.ones(n, 1, 1), 2.0)
    assert one.var().item() == pytest.approx(2.0, rel=0.02)  # sigma * sqrt(tau): variance * tau
    log_pi = torch.log(torch.tensor([0.25, 0.75])).expand(n, 1, 2)
    mu = torch.tensor([-1.0, 1.0]).expand(n, 1, 2)
    x = sample_mixture(log_pi, mu, torch.full((n, 1, 2), 1e-3), 0.5)
    p = 0.75 ** 2 / (0.75 ** 2 + 0.25 ** 2)  # softmax(log pi / 0.5)
    assert (x > 0).float().mean().item() == pytest.approx(p, abs=0.005)


def test_larger_temperature_spreads_dreams_wider(model):
    set_seed(0)
    actions = torch.zeros(15, 2)
    spread = [dream(model, torch.zeros(2), actions, temperature=t, n=500)[:, -1].std(0).sum().item()
              for t in (0.25, 1.0, 2.0)]
    assert spread[0] < spread[1] < spread[2]


def test_reproducible_under_set_seed(model):
    set_seed(3)
    first = dream(model, torch.zeros(2), torch.zeros(6, 2), n=4)
    set_seed(3)
    assert torch.equal(first, dream(model, torch.zeros(2), torch.zeros(6, 2), n=4))


def test_negative_temperature_rejected(model):
    with pytest.raises(ValueError, match="temperature"):
        dream(model, torch.zeros(2), torch.zeros(3, 2), temperature=-1.0)
