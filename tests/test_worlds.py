"""The late-fork world: its generator, its exact floor, and why only memory can reach it."""
import math

import pytest
import torch

from mdn_course import WORLD, bayes_optimal_nll
from mdn_course.memory_world import generate_memory_world_data, memory_world_bayes_nll


def test_shapes_and_seeded_reproducibility():
    z, a = generate_memory_world_data(50, seq_len=7, seed=3)
    assert z.shape == (50, 8, 2) and a.shape == (50, 7, 2)
    z2, a2 = generate_memory_world_data(50, seq_len=7, seed=3)
    assert torch.equal(z, z2) and torch.equal(a, a2)


def test_the_previous_action_decides_the_branch():
    z, a = generate_memory_world_data(2000, seq_len=10, seed=0)
    jump = z[:, 1:, 1] - z[:, :-1, 1] - WORLD.step_scale * torch.tanh(a[:, :, 1])
    late_fork = (z[:, 1:-1, 0] > WORLD.fork_threshold)                      # fork steps t >= 1
    went_up = jump[:, 1:] > 0
    decided_up = a[:, :-1, 1] > 0
    assert late_fork.sum() > 500
    assert torch.equal(went_up[late_fork], decided_up[late_fork])


def test_floor_matches_the_closed_form_from_the_noise():
    z, a = generate_memory_world_data(1500, seq_len=12, seed=1)
    fork = z[:, :-1, 0] > WORLD.fork_threshold
    base = z[:, :-1] + WORLD.step_scale * torch.tanh(a)
    residual = (z[:, 1:] - base).double()
    sign = torch.where(torch.cat([torch.zeros(len(a), 1, dtype=torch.bool), a[:, :-1, 1] > 0], 1), 1.0, -1.0)
    # the first step's sign is a hidden coin: recover it from the data for the noise computation
    sign[:, 0] = torch.where(residual[:, 0, 1] > 0, 1.0, -1.0)
    residual[..., 1] -= fork.double() * sign.double() * WORLD.fork_offset
    s = WORLD.noise_std
    noise_nll = (0.5 * (residual / s) ** 2 + math.log(s) + 0.5 * math.log(2 * math.pi)).sum(-1)
    by_hand = noise_nll.mean().item()
    by_hand += fork[:, 0].double().sum().item() * math.log(2) / fork.numel()   # the coin at step 0
    assert memory_world_bayes_nll(z, a) == pytest.approx(by_hand, abs=1e-6)


def test_memory_lowers_the_floor_by_log_2_per_late_fork_step():
    z, a = generate_memory_world_data(1500, seq_len=12, seed=2)
    fork = z[:, :-1, 0] > WORLD.fork_threshold
    late_share = fork[:, 1:].float().sum().item() / fork.numel()
    memoryless = bayes_optimal_nll(z, a)          # 50/50 at every fork: the best without the past
    assert memoryless - memory_world_bayes_nll(z, a) == pytest.approx(late_share * math.log(2), abs=1e-4)


def test_fixed_plan_and_start():
    plan = torch.randn(15, 2)
    z, a = generate_memory_world_data(20, actions=plan, start=torch.tensor([0.1, -0.2]), seed=0)
    assert z.shape == (20, 16, 2) and torch.equal(a[3], plan)
    assert torch.allclose(z[:, 0], torch.tensor([0.1, -0.2]).expand(20, 2))


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_sequences=0), "positive"),
    (dict(actions=torch.zeros(5, 3)), "actions must be"),
])
def test_bad_input_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_memory_world_data(**{"n_sequences": 4, **kwargs})


def test_floor_rejects_mismatched_shapes():
    z, a = generate_memory_world_data(4, seq_len=5, seed=0)
    with pytest.raises(ValueError, match="expected z"):
        memory_world_bayes_nll(z[:, :-1], a)
