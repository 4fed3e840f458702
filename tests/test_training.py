"""A short training run learns; the history and split behave as documented."""
import pytest
import torch

from mdn_course import MDNRNN, bayes_optimal_nll, evaluate_nll, generate_synthetic_data, set_seed, train_model


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
