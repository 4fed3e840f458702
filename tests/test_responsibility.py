"""The responsibility maths of lesson 1, sections 5 and 6, against autograd and hand-made mixtures."""
import math

import pytest
import torch

from mdn_course import mdn_nll_from_logs
from mdn_course.responsibility import (component_census, merge_bumps, nll_gradients_by_responsibility,
                                       responsibilities)


def _mixture(n=7, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, 1, k, generator=g, dtype=torch.float64)
    return (torch.log_softmax(logits, -1), torch.randn(n, 1, k, generator=g, dtype=torch.float64),
            0.3 * torch.randn(n, 1, k, generator=g, dtype=torch.float64), torch.randn(n, 1, generator=g, dtype=torch.float64))


def test_responsibilities_are_the_posterior_over_components():
    log_pi, mu, log_sigma, y = _mixture()
    r = responsibilities(log_pi, mu, log_sigma, y)
    sigma = log_sigma.exp()
    joint = log_pi.exp() * torch.exp(-0.5 * ((y.unsqueeze(-1) - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    assert torch.allclose(r, joint / joint.sum(-1, keepdim=True), atol=1e-12)
    assert torch.allclose(r.sum(-1), torch.ones_like(r[..., 0]))


def test_a_point_on_one_component_belongs_to_it():
    log_pi = torch.log(torch.tensor([0.5, 0.5]))
    r = responsibilities(log_pi, torch.tensor([-0.4, 0.4]), torch.log(torch.tensor([0.05, 0.05])), torch.tensor(0.4))
    assert r[1] > 0.999 and r[0] < 1e-3


def test_gradients_by_responsibility_equal_autograd():
    log_pi, mu, log_sigma, y = _mixture()
    logits, m, s = (t.clone().requires_grad_() for t in (log_pi, mu, log_sigma))
    mdn_nll_from_logs(torch.log_softmax(logits, -1), m, s, y, reduction="none").sum().backward()
    for got, expected in zip(nll_gradients_by_responsibility(log_pi, mu, log_sigma, y), (logits.grad, m.grad, s.grad)):
        assert torch.allclose(got, expected, atol=1e-10)


def test_a_wrong_formula_is_caught():
    """The check in lesson 1 can fail: forgetting the responsibility (every component pulled fully) differs."""
    log_pi, mu, log_sigma, y = _mixture()
    m = mu.clone().requires_grad_()
    mdn_nll_from_logs(log_pi, m, log_sigma, y, reduction="none").sum().backward()
    unweighted = -(y.unsqueeze(-1) - mu) / log_sigma.exp() ** 2
    assert not torch.allclose(unweighted, m.grad, atol=1e-3)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="one shape"):
        responsibilities(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="without its last"):
        responsibilities(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2))


def test_merge_bumps_and_census():
    # two components on +0.4 (redundant), one on -0.4, one dead
    weights, means = [0.3, 0.2, 0.49, 0.01], [0.40, 0.42, -0.40, 0.0]
    assert [(round(w, 2), round(m, 3)) for w, m in merge_bumps(weights, means)] == [(0.49, -0.4), (0.5, 0.408)]
    census = component_census(weights, means)
    assert (census.n_components, census.live, census.bumps, census.dead, census.redundant) == (4, 3, 2, 1, 1)
    with pytest.raises(ValueError, match="one weight per mean"):
        merge_bumps([1.0], [0.0, 1.0])


def test_per_dimension_mixtures_mix_the_branches_of_a_diagonal_fork():
    from mdn_course.factorised import diagonal_fork_samples

    world, per_dim = diagonal_fork_samples(20000, generator=torch.Generator().manual_seed(0))
    off = lambda s: (s[:, 0] * s[:, 1] < 0).float().mean().item()  # noqa: E731
    assert off(world) < 0.001 and abs(off(per_dim) - 0.5) < 0.02
    for d in range(2):   # the marginals agree: the per-dimension model is the best of its kind
        assert abs((world[:, d] > 0).float().mean() - (per_dim[:, d] > 0).float().mean()) < 0.02
        assert abs(world[:, d].std() - per_dim[:, d].std()) < 0.01
    with pytest.raises(ValueError, match="noise > 0"):
        diagonal_fork_samples(10, noise=0.0)
