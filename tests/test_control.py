"""The controller, the batched rollouts in the world and in the dream, and CMA-ES: pinned to closed forms.

Worlds without noise make every rollout a calculation by hand; the batched dream is checked against
one candidate at a time with the same random numbers, and against ``dream.sample_mixture``'s rule.
"""
import math

import numpy as np
import pytest
import torch

from mdn_course import MDNRNN, WORLD, WorldSpec, set_seed
from mdn_course.cma_training import evaluate_controller, run_cma, train_in_dream, train_in_world
from mdn_course.control import (ForkWorld, LinearController, Task, cliff_task, dream_rollouts, fork_road_task,
                                real_rollouts, start_states, tempered_sample)
from mdn_course.dream import sample_mixture

CALM = WorldSpec(noise_std=0.0)                   # the lesson world without noise: rollouts by hand


def constant_controller(a0: float, a1: float, hidden_dim: int = 0) -> torch.Tensor:
    """Parameters of a controller that ignores its inputs and outputs tanh(b) = (a0, a1)."""
    controller = LinearController(2, 2, hidden_dim)
    params = torch.zeros(controller.n_params)
    params[-2:] = torch.atanh(torch.tensor([a0, a1]))
    return params


# ------------------------------------------------------------------ tasks

def test_cliff_reward_and_crash_on_known_states():
    task = cliff_task(edge=1.0, fall_penalty=5.0)
    z = torch.tensor([[0.0, 0.3], [2.0, 0.99], [0.0, 1.0], [0.0, 1.7], [0.0, -0.4]])
    assert task.reward(z).tolist() == pytest.approx([0.3, 0.99, -5.0, -5.0, -0.4])
    assert task.crashed(z).tolist() == [False, False, True, True, False]


def test_fork_road_pays_only_right_of_the_line_and_ends_off_the_road():
    task = fork_road_task(half_width=0.5, crash_penalty=5.0)
    z = torch.tensor([[0.4, 0.0], [0.6, 0.49], [0.6, -0.5], [2.0, 0.1], [0.5, 0.0]])
    assert task.reward(z).tolist() == [0.0, 1.0, -5.0, 1.0, 0.0]     # z[0] = 0.5 is not past the line
    assert task.crashed(z).tolist() == [False, False, True, False, False]


def test_task_rejects_nonsense():
    with pytest.raises(ValueError, match="at least one step"):
        Task("x", 0, lambda z: z[:, 0])
    with pytest.raises(ValueError, match="start_std"):
        Task("x", 3, lambda z: z[:, 0], start_std=-1)


# ------------------------------------------------------------------ the controller

def test_controller_layout_and_known_weights():
    controller = LinearController(2, 2, 3)
    assert controller.n_features == 5 and controller.n_params == 2 * 5 + 2
    params = torch.arange(12, dtype=torch.float32) / 10
    weight, bias = controller.unpack(params)
    assert weight.shape == (1, 2, 5) and weight[0, 1].tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9])
    assert bias[0].tolist() == pytest.approx([1.0, 1.1])
    z, h = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.5, 0.0, 2.0]])
    expected = torch.tanh(weight[0] @ torch.cat([z[0], h[0]]) + bias[0])
    assert torch.allclose(controller.act(params, z, h), expected.unsqueeze(0))


def test_each_candidate_acts_on_its_own_rows():
    controller = LinearController(2, 2)
    params = torch.stack([constant_controller(0.1, 0.2), constant_controller(-0.3, 0.4)])
    actions = controller.act(params, torch.zeros(6, 2))        # 2 candidates x 3 episodes, candidate-major
    assert torch.allclose(actions[:3], torch.tensor([0.1, 0.2]).expand(3, 2), atol=1e-6)
    assert torch.allclose(actions[3:], torch.tensor([-0.3, 0.4]).expand(3, 2), atol=1e-6)


def test_controller_rejects_wrong_parameter_shapes():
    with pytest.raises(ValueError, match=r"\(P, 6\)"):
        LinearController(2, 2).unpack(torch.zeros(3, 7))


def test_for_memory_reads_the_memory_sizes():
    model = MDNRNN(latent_dim=4, action_dim=3, hidden_dim=16)
    assert LinearController.for_memory(model).n_params == 3 * (4 + 16) + 3
    assert LinearController.for_memory(model, reads_memory=False).n_params == 3 * 4 + 3


# ------------------------------------------------------------------ the real world

def test_real_rollout_of_a_constant_climb_by_hand():
    """No noise, constant action: z[1] rises by 0.3 tanh(a) a step until it crosses the edge."""
    task = Task("cliff", 6, cliff_task(edge=1.0).reward, cliff_task(edge=1.0).crashed, start=(0.0, 0.0), start_std=0.0)
    a1 = 0.9
    step = WORLD.step_scale * math.tanh(a1)                   # 0.2148 per step
    params = constant_controller(-0.5, a1).unsqueeze(0)       # drift left too, away from the fork line
    played = real_rollouts(task, params, LinearController(2, 2), torch.zeros(1, 2), env=ForkWorld(world=CALM))
    heights = [step * (t + 1) for t in range(6)]              # 0.21, 0.43, 0.64, 0.86, 1.07 (falls), ...
    assert played.states[0, 0, 1:, 1].tolist() == pytest.approx(heights, abs=1e-5)
    assert played.rewards[0, 0, :5].tolist() == pytest.approx(heights[:4] + [-5.0], abs=1e-5)
    assert played.alive[0, 0].tolist() == [1, 1, 1, 1, 1, 0]
    assert played.returns[0, 0].item() == pytest.approx(sum(heights[:4]) - 5.0, abs=1e-4)
    assert played.crashed.tolist() == [[True]]


def test_lesson_world_forks_by_coin_and_late_fork_by_the_previous_action():
    """Right of the line with a(1) alternating sign: the late fork pushes z[1] the way the previous action
    pointed; the lesson world ignores the action and flips a coin."""
    n, steps = 400, 4
    plan = torch.tensor([[0.0, 0.5], [0.0, -0.5], [0.0, 0.5], [0.0, -0.5]])
    z = torch.tensor([[1.0, 0.0]]).expand(n, 2)
    for late in (True, False):
        env, gen = ForkWorld(late_fork=late, world=CALM), torch.Generator().manual_seed(0)
        state = env.reset(z)
        pushes = []
        for t in range(steps):
            new = env.step(state, plan[t].expand(n, 2), gen)
            pushes.append((new[:, 1] - state[:, 1] - WORLD.step_scale * math.tanh(plan[t, 1].item())) / WORLD.fork_offset)
            state = new
        pushes = torch.stack(pushes, dim=1)                    # (n, steps) of +-1
        assert torch.allclose(pushes.abs(), torch.ones_like(pushes), atol=1e-5)
        if late:
            assert torch.allclose(pushes[:, 1:], torch.sign(plan[:-1, 1]).expand(n, steps - 1), atol=1e-5)
            assert 0.4 < (pushes[:, 0] > 0).float().mean() < 0.6     # the first step has no earlier action
        else:
            assert 0.4 < (pushes[:, 1:] > 0).float().mean() < 0.6


def test_real_rollouts_need_the_memory_when_the_controller_reads_h():
    with pytest.raises(ValueError, match="model="):
        real_rollouts(cliff_task(), torch.zeros(1, 2 * 34 + 2), LinearController(2, 2, 32), torch.zeros(1, 2))


def test_start_states_follow_the_task():
    task = cliff_task(start_std=0.0)
    assert torch.equal(start_states(task, 3, torch.Generator().manual_seed(0)), torch.zeros(3, 2))
    spread = start_states(cliff_task(start_std=0.1), 20000, torch.Generator().manual_seed(0))
    assert spread.std(dim=0).tolist() == pytest.approx([0.1, 0.1], abs=0.003)


# ------------------------------------------------------------------ the dream

@pytest.fixture(scope="module")
def memory():
    set_seed(0)
    return MDNRNN(hidden_dim=8).eval()               # untrained is enough: the tests are about plumbing


def test_tempered_sample_is_sample_mixtures_rule(memory):
    """Fed the same random numbers, the per-row sampler gives exactly what ``sample_mixture`` gives."""
    g = torch.Generator().manual_seed(3)
    log_pi = torch.log_softmax(torch.randn(5, 2, 4, generator=g), dim=-1)
    mu, sigma = torch.randn(5, 2, 4, generator=g), torch.rand(5, 2, 4, generator=g) + 0.1
    for tau in (0.1, 1.0, 1.7):
        expected = sample_mixture(log_pi, mu, sigma, tau, generator=torch.Generator().manual_seed(9))
        draws = torch.Generator().manual_seed(9)
        uniform = torch.rand(log_pi.shape, generator=draws)
        normal = torch.randn(mu.shape[:-1], generator=draws)
        got = tempered_sample(log_pi, mu, sigma, torch.full((5,), tau), uniform, normal)
        assert torch.allclose(got, expected, atol=1e-6), tau


def test_batched_dream_equals_one_candidate_at_a_time(memory):
    """Three candidates x two episodes in one batch = each candidate dreamed alone with the same draws."""
    task = cliff_task(steps=5)
    controller = LinearController.for_memory(memory)
    params = torch.randn(3, controller.n_params, generator=torch.Generator().manual_seed(1)) * 0.5
    starts = start_states(task, 2, torch.Generator().manual_seed(2))
    taus = [0.3, 1.0, 1.5]
    batched = dream_rollouts(task, params, controller, starts.repeat(3, 1), memory, taus,
                             generator=torch.Generator().manual_seed(4))
    for p in range(3):
        alone = dream_rollouts(task, params[p:p + 1], controller, starts, memory, taus[p],
                               generator=torch.Generator().manual_seed(4))
        assert torch.allclose(batched.states[p], alone.states[0], atol=1e-5), p
        assert torch.allclose(batched.returns[p], alone.returns[0], atol=1e-5), p


def test_the_equality_check_catches_a_mixed_up_row_layout(memory):
    """The reference above would fail if candidates' rows were interleaved (episode-major) instead."""
    task = cliff_task(steps=5)
    controller = LinearController.for_memory(memory)
    params = torch.randn(2, controller.n_params, generator=torch.Generator().manual_seed(1))
    starts = start_states(task, 3, torch.Generator().manual_seed(2))
    right = dream_rollouts(task, params, controller, starts.repeat(2, 1), memory, 1.0,
                           generator=torch.Generator().manual_seed(4))
    wrong = dream_rollouts(task, params, controller, starts.repeat_interleave(2, dim=0), memory, 1.0,
                           generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(right.states, wrong.states)


def test_dream_with_a_fixed_plan_matches_dream_module(memory):
    """A controller that ignores its inputs is an action plan: the dream's mean path at tau -> small
    follows ``dream.dream`` at the same low temperature closely (both take the heaviest component)."""
    from mdn_course import dream

    task = Task("flat", 6, lambda z: z[:, 0], start=(0.3, -0.2), start_std=0.0)
    params = constant_controller(0.4, -0.2, hidden_dim=memory.hidden_dim).unsqueeze(0)
    controller = LinearController.for_memory(memory)
    ours = dream_rollouts(task, params, controller, torch.tensor([[0.3, -0.2]]), memory, 1e-6,
                          generator=torch.Generator().manual_seed(0))
    plan = torch.tensor([0.4, -0.2]).expand(6, 2)
    theirs = dream(memory, torch.tensor([0.3, -0.2]), plan, temperature=0.0)
    assert torch.allclose(ours.states[0, 0], theirs[0], atol=1e-3)


def test_dream_rejects_bad_temperatures(memory):
    controller = LinearController.for_memory(memory)
    params, z0 = torch.zeros(2, controller.n_params), torch.zeros(4, 2)
    with pytest.raises(ValueError, match="> 0"):
        dream_rollouts(cliff_task(), params, controller, z0, memory, 0.0)
    with pytest.raises(ValueError, match="one per candidate"):
        dream_rollouts(cliff_task(), params, controller, z0, memory, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="do not split"):
        dream_rollouts(cliff_task(), params, controller, torch.zeros(5, 2), memory, 1.0)


def test_dream_runs_any_latent_size():
    """M can be any MDN-RNN: a 5-D latent, 3-D action memory drives a controller of the matching size."""
    set_seed(0)
    model = MDNRNN(latent_dim=5, action_dim=3, hidden_dim=4).eval()
    task = Task("norm", 4, lambda z: -z.norm(dim=-1), start=(0.0,) * 5, start_std=0.1)
    controller = LinearController.for_memory(model)
    params = torch.zeros(2, controller.n_params)
    played = dream_rollouts(task, params, controller, torch.zeros(6, 5), model, 1.0,
                            generator=torch.Generator().manual_seed(0))
    assert played.states.shape == (2, 3, 5, 5) and played.actions.shape == (2, 3, 4, 3)


# ------------------------------------------------------------------ CMA-ES

def test_cma_finds_a_known_optimum_and_replays_exactly():
    target = np.array([1.0, -2.0, 0.5])
    score = lambda population: -((population - target) ** 2).sum(axis=1)
    first = run_cma(score, 3, n_runs=2, popsize=8, generations=60, seed=3, progress=False)
    again = run_cma(score, 3, n_runs=2, popsize=8, generations=60, seed=3, progress=False)
    for run, rerun in zip(first, again):
        assert np.allclose(run.params, target, atol=1e-3)
        assert np.array_equal(run.params, rerun.params) and run.mean_score == rerun.mean_score
    assert not np.array_equal(first[0].mean_score, first[1].mean_score)      # the two runs are seeded apart


def test_cma_refuses_seed_zero_and_tiny_populations():
    with pytest.raises(ValueError, match="clock"):
        run_cma(lambda p: p[:, 0], 2, seed=0, progress=False)
    with pytest.raises(ValueError, match="popsize"):
        run_cma(lambda p: p[:, 0], 2, popsize=2, progress=False)


def test_dream_training_is_deterministic_and_improves_the_dream_score(memory):
    task = cliff_task(steps=6)
    kwargs = dict(popsize=8, generations=6, episodes=4, seed=2, progress=False, reads_memory=False)
    first = train_in_dream(memory, task, [0.5, 1.0], **kwargs)
    again = train_in_dream(memory, task, [0.5, 1.0], **kwargs)
    assert list(first) == [0.5, 1.0]
    for tau in first:
        assert np.array_equal(first[tau].params, again[tau].params)
        assert first[tau].params.shape == (LinearController(2, 2).n_params,)


def test_training_in_the_world_learns_to_climb_without_falling():
    """In the real world, CMA-ES finds a controller that climbs towards the edge and mostly stays on."""
    task = cliff_task(steps=8)
    result = train_in_world(task, reads_memory=False, popsize=12, generations=25, episodes=8, seed=1, progress=False)
    played = evaluate_controller(task, result.params, reads_memory=False, episodes=200)
    zero = evaluate_controller(task, np.zeros(6), reads_memory=False, episodes=200)
    assert played.returns.mean() > zero.returns.mean() + 2.0
    assert played.crashed.float().mean() < 0.2
    with pytest.raises(ValueError, match="needs the memory"):
        train_in_world(task, reads_memory=True, generations=1, progress=False)


def test_observe_lets_the_controller_see_a_latent_of_another_size():
    """The frames hook: controller and memory see observe(state) (here a 3-D stand-in for a VAE latent),
    the real world keeps its 2-D states, and dreams start from observed start states."""
    set_seed(0)
    model = MDNRNN(latent_dim=3, action_dim=2, hidden_dim=4).eval()
    observe = lambda s: torch.cat([s, s[:, :1] * 2.0], dim=1)
    params = np.zeros(LinearController.for_memory(model).n_params)
    real = evaluate_controller(cliff_task(steps=3), params, model=model, episodes=5, observe=observe)
    dreamed = evaluate_controller(cliff_task(steps=3), params, model=model, temperature=1.0, episodes=5, observe=observe)
    assert real.states.shape == (1, 5, 4, 2) and dreamed.states.shape == (1, 5, 4, 3)
    assert torch.allclose(dreamed.states[0, :, 0, 2], 2.0 * real.states[0, :, 0, 0])
    result = train_in_dream(model, cliff_task(steps=3), [1.0], popsize=4, generations=2, episodes=2,
                            progress=False, observe=observe)
    assert result[1.0].params.shape == params.shape
    with pytest.raises(ValueError, match="observe="):  # without observe the 2-D starts do not fit the 3-D memory
        train_in_dream(model, cliff_task(steps=3), [1.0], popsize=4, generations=1, episodes=2, progress=False)
