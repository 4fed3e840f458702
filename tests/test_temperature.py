"""Temperature helpers and the real-vs-dreamed distance, on inputs with known answers."""
import math

import pytest
import torch

from mdn_course import MDNRNN, evaluate_nll, generate_synthetic_data
from mdn_course.horizons import horizon_distance, wasserstein_1
from mdn_course.temperature import branch_report, temperature_nll_curve, tempered_log_params


def test_tempering_follows_the_rule():
    log_pi = torch.log_softmax(torch.tensor([[0.0, 1.0, 3.0]]), dim=-1)
    log_sigma = torch.zeros(1, 3)
    same_pi, same_sigma = tempered_log_params(log_pi, log_sigma, 1.0)
    assert torch.allclose(same_pi, log_pi) and torch.allclose(same_sigma, log_sigma)
    cold_pi, cold_sigma = tempered_log_params(log_pi, log_sigma, 0.5)
    assert torch.allclose(cold_pi.exp().sum(), torch.tensor(1.0))
    assert cold_pi.exp()[0, 2] > log_pi.exp()[0, 2]                     # sharper choice
    assert torch.allclose(cold_sigma, torch.full((1, 3), 0.5 * math.log(0.5)))
    with pytest.raises(ValueError, match="tau must be > 0"):
        tempered_log_params(log_pi, log_sigma, 0.0)


def test_nll_curve_at_tau_1_is_the_plain_nll():
    torch.manual_seed(0)
    model = MDNRNN(hidden_dim=8, n_components=3)
    z, a = generate_synthetic_data(20, seq_len=5, seed=0)
    curve = temperature_nll_curve(model, z, a, [0.5, 1.0, 2.0])
    assert curve[1.0] == pytest.approx(evaluate_nll(model, z, a), abs=1e-5)
    assert set(curve) == {0.5, 1.0, 2.0}


def test_branch_report_on_known_paths():
    steps = torch.tensor([0.4, 0.4, -0.4, 0.4])
    committed = torch.zeros(10, 5, 2)
    committed[:, 1:, 1] = torch.cumsum(steps, 0)                          # every dream the same pattern
    report = branch_report(committed)
    assert report["distinct_patterns"] == 1.0 and report["share_up"] == 0.75 and report["off_branch"] == 0.0
    assert report["distinct_patterns_by_chance"] == pytest.approx(16 * (1 - (15 / 16) ** 10))
    wild = committed.clone()
    wild[:, 1:, 1] = torch.cumsum(torch.tensor([0.1, 0.4, 0.4, 0.9]), 0)
    assert branch_report(wild)["off_branch"] == 0.5
    with pytest.raises(ValueError, match="paths must be"):
        branch_report(torch.zeros(3, 2))


def test_wasserstein_of_a_shift_is_the_shift():
    x = torch.randn(200, 2)
    assert wasserstein_1(x, x + torch.tensor([0.3, -0.2])) == pytest.approx(0.5, abs=1e-5)
    a = torch.randn(100, 4, 2)
    b = a + 1.0
    assert torch.allclose(horizon_distance(a, b), torch.full((4,), 2.0), atol=1e-5)
    with pytest.raises(ValueError):
        wasserstein_1(x, x[:10])
