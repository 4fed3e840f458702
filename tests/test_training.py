"""A short training run learns; the history and split behave as documented."""
import pytest
import torch

from mdn_course import (MDNRNN, bayes_optimal_nll, evaluate_nll, fit_full_batch, generate_synthetic_data, set_seed,
                        train_model)


def test_short_training_lowers_heldout_nll():
    set_seed(0)
    z, a = generate_synthetic_data(300, seq_len=10, seed=0)
    model = MDNRNN(hidden_dim=32, n_components=3)
    z_test, a_test = generate_synthetic_data(300, seq_len=10, seed=1)
    before = evaluate_nll(model, z_test, a_test)
    history = train_model(model, z, a, epochs=8, batch_size=64, progress=False)
    after = evaluate_nll(model, z_test, a_test)
    assert history.epochs == 8 and len(history.heldout_nll) == 8
    assert after < before - 1.5
    assert history.heldout_nll[-1] < history.heldout_nll[0]
    assert after > bayes_optimal_nll(z_test, a_test) - 0.05  # nothing beats the floor by more than noise


def test_training_is_reproducible():
    results = []
    for _ in range(2):
        set_seed(1)
        z, a = generate_synthetic_data(64, seq_len=5, seed=0)
        model = MDNRNN(hidden_dim=8, n_components=2)
        results.append(train_model(model, z, a, epochs=2, batch_size=16, quiet=True).train_nll)
    assert results[0] == results[1]


@pytest.mark.parametrize("kwargs, message", [
    (dict(heldout_fraction=0.0), "heldout_fraction"),
])
def test_bad_arguments(kwargs, message):
    z, a = generate_synthetic_data(10, seq_len=3, seed=0)
    with pytest.raises(ValueError, match=message):
        train_model(MDNRNN(), z, a, progress=False, **kwargs)


def test_mismatched_data_named():
    z, a = generate_synthetic_data(10, seq_len=3, seed=0)
    with pytest.raises(ValueError, match="one more time step"):
        train_model(MDNRNN(), z[:, :-1], a, progress=False)
    with pytest.raises(ValueError, match="latent_dim=3"):
        train_model(MDNRNN(latent_dim=3, action_dim=2), z, a, progress=False)


def test_cpu_threads_restores_the_previous_setting():
    from mdn_course.training import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before


# ---------------------------------------------------------------- ending where training is stable

def test_train_model_reports_the_training_nll_evaluated_after_the_last_step():
    set_seed(0)
    z, a = generate_synthetic_data(120, seq_len=6, seed=0)
    model = MDNRNN(hidden_dim=8, n_components=2)
    steps = []
    history = train_model(model, z, a, epochs=3, batch_size=32, seed=4, progress=False,
                          on_step=lambda step, m: steps.append((step, m is model)))
    order = torch.randperm(120, generator=torch.Generator().manual_seed(4))
    train_idx = order[12:]                                    # 10 % held out, as train_model splits
    assert history.final_train_nll == pytest.approx(evaluate_nll(model, z[train_idx], a[train_idx]), abs=1e-6)
    assert history.final_train_nll != pytest.approx(history.train_nll[-1], abs=1e-4)   # not the running average
    assert steps == [(i, True) for i in range(1, 3 * 4 + 1)]  # 108 sequences / 32 = 4 steps per epoch


def test_train_model_takes_tiny_steps_at_the_end():
    set_seed(0)
    z, a = generate_synthetic_data(200, seq_len=6, seed=0)
    model = MDNRNN(hidden_dim=8, n_components=2)
    moves, previous = [], [p.detach().clone() for p in model.parameters()]

    def record(step, m):
        current = [p.detach().clone() for p in m.parameters()]
        moves.append(max((c - p).abs().max().item() for c, p in zip(current, previous)))
        previous[:] = current

    train_model(model, z, a, epochs=10, batch_size=32, progress=False, on_step=record)
    peak = max(moves)
    assert moves[-1] < 1e-3 * peak                            # the last step is a thousandth of the largest
    assert max(moves[-len(moves) // 20:]) < 0.05 * peak       # and so are all of the last 5 %


def test_fit_full_batch_settles_where_a_constant_rate_keeps_bouncing():
    def settle(fraction):
        w = torch.nn.Parameter(torch.tensor([0.0]))
        module = torch.nn.Module()
        module.w = w
        tail = []
        # |w - 3|: its gradient is +-1 however close w gets, so only a shrinking step lets w settle
        final = fit_full_batch(module, lambda m: (m.w - 3.0).abs().sum(), steps=400, lr=0.1,
                               final_lr_fraction=fraction, on_step=lambda step, m: tail.append(m.w.item()))
        return final, w.item(), tail[-40:]

    final, w, tail = settle(1e-3)
    assert abs(w - 3.0) < 1e-3 and final == pytest.approx(abs(w - 3.0), abs=1e-7)   # evaluated at the end
    assert max(tail) - min(tail) < 5e-3                        # measured: 0.0008
    _, _, tail_constant = settle(1.0)                         # a constant rate: Adam keeps stepping about lr
    assert max(tail_constant) - min(tail_constant) > 0.03      # measured: 0.07


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(lr=0.0), dict(final_lr_fraction=0.0),
                                    dict(final_lr_fraction=2.0)])
def test_fit_full_batch_bad_arguments(kwargs):
    module = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="final_lr_fraction"):
        fit_full_batch(module, lambda m: m.weight.sum(), **kwargs)


def test_progress_bars_start_no_monitor_thread(monkeypatch):
    """tqdm's monitor thread redraws a slow bar from outside the loop's thread (in a notebook: widget messages
    from a background thread); the course's bars never start it, and still count every step."""
    import tqdm.std

    from mdn_course.progress import progress_bar

    started = []
    monkeypatch.setattr(tqdm.std, "TMonitor", lambda *args: started.append(args))
    monkeypatch.setattr(tqdm.std.tqdm, "monitor", None)
    bar = progress_bar(range(5), desc="training", unit="epoch")
    assert list(bar) == [0, 1, 2, 3, 4] and bar.n == 5
    assert started == []
    plain = tqdm.std.tqdm(range(2))             # the check itself: a plain tqdm bar does ask for one
    plain.close()
    assert started, "a plain tqdm bar should have asked for its monitor thread (is the check still valid?)"
