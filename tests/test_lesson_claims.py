"""The facts the lessons' prose states about trained models, with margins that hold on any CPU.

Each test retrains what the lesson trains (same seeds, same recipe) and asserts the claim with a
tolerance far wider than the float differences between CPUs (third or fourth decimal).
"""
import math

import pytest
import torch

from mdn_course import (WORLD, MDNRNN, bayes_optimal_nll, dream, evaluate_nll, fit_full_batch,
                        generate_synthetic_data, mdn_nll_from_logs, predict_next, set_seed, train_lesson_model,
                        train_model)
from mdn_course.architectures import FeedForwardMDN
from mdn_course.horizons import horizon_distance
from mdn_course.memory_world import generate_memory_world_data, memory_world_bayes_nll
from mdn_course.temperature import branch_report, temperature_nll_curve
from mdn_course.tools.lesson_cells import defining_cells

pytestmark = pytest.mark.slow


def test_lesson1_squared_error_predicts_the_average_and_the_mixture_finds_both_branches():
    lesson = defining_cells("01_why_distributions.ipynb", "two_branch_data", "TinyMixtureModel")
    x, y, regressor, mixture = (lesson[name] for name in ("x", "y", "regressor", "mixture_model"))
    finals = {}
    for name, model, loss_of in (("mse", regressor, lambda m: ((m(x) - y) ** 2).mean()),
                                 ("nll", mixture, lambda m: mdn_nll_from_logs(*m(x), y))):
        tail = []
        finals[name] = fit_full_batch(model, loss_of, on_step=lambda step, m: tail.append(float(loss_of(m).detach())))
        assert max(tail[-60:]) - min(tail[-60:]) < 0.005                 # the fit ends settled
    mse, nll = finals["mse"], finals["nll"]
    assert abs(mse - 0.08) < 0.005 and abs(nll - -1.25) < 0.02          # printed as 0.08 and -1.25
    probe = torch.tensor([[0.8]])
    with torch.no_grad():
        guess = regressor(probe).item()
        log_pi, mu, log_sigma = mixture(probe)
    right = x > 0.5
    assert abs(guess) < 0.05                                            # "a single value near 0"
    assert ((y[right] - guess).abs() < 0.1).float().mean() < 0.01     # printed as 0%
    weights, means, widths = log_pi.exp()[0, 0], mu[0, 0], log_sigma.exp()[0, 0]
    kept = weights > 0.05
    assert kept.sum() == 2                                              # two components ...
    assert ((weights[kept] - 0.5).abs() < 0.05).all()                   # ... of weight about one half
    assert torch.allclose(means[kept].sort().values, torch.tensor([-0.4, 0.4]), atol=0.03)   # on the branches
    assert ((widths[kept] - 0.05).abs() < 0.01).all()


@pytest.fixture(scope="module")
def trained():
    return train_lesson_model(seed=0, progress=False, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def lesson(trained):
    model, _, z, a = trained
    return model, z, a


def test_lesson4_training_and_heldout_nll_end_together_just_above_the_floor(trained):
    model, history, z, a = trained
    floor = bayes_optimal_nll(z, a)
    assert abs(history.final_train_nll - history.heldout_nll[-1]) < 0.03   # "the curves overlap"
    assert 0 < history.heldout_nll[-1] - floor < 0.08                       # "just above the dashed line"


def test_lesson4_five_components_beat_one_by_a_third_of_a_nat(lesson):
    model, z, a = lesson
    set_seed(0)
    single = MDNRNN(n_components=1)
    train_model(single, z, a, epochs=20, progress=False)
    z_new, a_new = generate_synthetic_data(1000, seed=123)
    five, one, floor = evaluate_nll(model, z_new, a_new), evaluate_nll(single, z_new, a_new), bayes_optimal_nll(z_new, a_new)
    assert five - floor < 0.08                       # "a few hundredths of a nat above the floor"
    assert one - five > 0.25                         # printed as 0.35
    assert single.head.n_components == 1
    width = predict_next(single, torch.tensor([1.0, 0.0])).sigma[0, 1, 0].item()
    assert 0.55 < width < 0.85                       # lesson 5's answer: "std about 0.7 at z = [1, 0]"


def test_lesson5_temperature_commits_below_one_and_goes_wild_above(lesson):
    model, _, _ = lesson
    gen = torch.Generator().manual_seed(0)
    start, still = torch.tensor([0.8, 0.0]), torch.zeros(8, 2)
    report = {tau: branch_report(dream(model, start, still, tau, n=200, generator=gen)) for tau in (0.01, 1.0, 3.0)}
    chance = report[1.0]["distinct_patterns_by_chance"]
    assert report[1.0]["distinct_patterns"] > 0.8 * chance          # tau = 1: fair coins
    assert report[0.01]["distinct_patterns"] < 0.5 * report[1.0]["distinct_patterns"]
    assert 20 <= report[0.01]["distinct_patterns"] <= 72             # "a few dozen patterns"
    assert report[3.0]["off_branch"] > report[1.0]["off_branch"] + 0.05


def test_lesson5_likelihood_learns_a_temperature_of_one(lesson):
    model, _, _ = lesson
    z_fresh, a_fresh = generate_synthetic_data(1000, seed=99)
    curve = temperature_nll_curve(model, z_fresh, a_fresh, [0.8, 0.9, 1.0, 1.1, 1.25])
    assert 0.9 <= min(curve, key=curve.get) <= 1.1
    assert curve[1.25] > curve[1.0] + 0.01


def test_lesson6_memory_pays_off_at_the_fork():
    z, a = generate_memory_world_data(2000, seq_len=20, seed=0)
    z_test, a_test = generate_memory_world_data(1000, seq_len=20, seed=7)
    fork = z_test[:, :-1, 0] > WORLD.fork_threshold
    at_fork = {}
    for name, build in (("feed-forward", FeedForwardMDN), ("lstm", MDNRNN)):
        set_seed(0)
        model = build()
        train_model(model, z, a, epochs=30, progress=False)
        with torch.no_grad():
            out = model(z_test[:, :-1], a_test)
            nll = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, z_test[:, 1:], reduction="none")
        at_fork[name] = nll[fork].mean().item()
    noise = 2 * (0.5 * math.log(2 * math.pi * WORLD.noise_std ** 2) + 0.5)
    assert at_fork["feed-forward"] > noise + math.log(2) - 0.1      # no memory: about a 50/50 guess
    assert at_fork["feed-forward"] - at_fork["lstm"] > 0.2          # printed as about 0.4
    assert memory_world_bayes_nll(z_test, a_test) < bayes_optimal_nll(z_test, a_test) - 0.1


def test_lesson7_long_sequences_keep_heading_right_dreams_real_for_longer():
    models = {}
    for name, (n, steps, batch) in {"short": (2000, 20, 256), "long": (400, 100, 50)}.items():
        z, a = generate_memory_world_data(n, seq_len=steps, seed=0)
        set_seed(0)
        models[name] = MDNRNN()
        train_model(models[name], z, a, epochs=30, batch_size=batch, progress=False)
    plan = 0.5 * torch.randn(100, 2, generator=torch.Generator().manual_seed(1)) + torch.tensor([0.3, 0.0])
    real, _ = generate_memory_world_data(500, actions=plan, start=torch.zeros(2), seed=11)
    gen = torch.Generator().manual_seed(3)
    at_50 = {name: horizon_distance(real, dream(m, torch.zeros(2), plan, 1.0, n=500, generator=gen))[50].item()
             for name, m in models.items()}
    assert at_50["long"] < 0.5 * at_50["short"]                    # printed as about 1 vs 7
    assert at_50["long"] > 0.3                                      # still far from real (real vs real: 0.07)
