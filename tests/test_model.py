"""Shapes and invariants of WorldLSTM, MDNHead and MDNRNN."""
import pytest
import torch

from mdn_course import MDNHead, MDNRNN, WorldLSTM


def test_world_lstm_shapes():
    lstm = WorldLSTM(latent_dim=3, action_dim=2, hidden_dim=16)
    h, (hn, cn) = lstm(torch.randn(4, 7, 3), torch.randn(4, 7, 2))
    assert h.shape == (4, 7, 16) and hn.shape == cn.shape == (1, 4, 16)


def test_head_weights_sum_to_one_and_sigma_positive_and_bounded():
    head = MDNHead(hidden_dim=8, latent_dim=3, n_components=5)
    log_pi, mu, log_sigma = head(torch.randn(10, 8) * 100)  # huge activations stay safe
    assert log_pi.shape == mu.shape == log_sigma.shape == (10, 3, 5)
    assert torch.allclose(log_pi.exp().sum(-1), torch.ones(10, 3), atol=1e-5)
    assert (log_sigma >= head.log_sigma_min).all() and (log_sigma <= head.log_sigma_max).all()


def test_mdnrnn_defaults_and_output_order():
    model = MDNRNN(latent_dim=2, action_dim=2)
    out = model(torch.randn(5, 9, 2), torch.randn(5, 9, 2))
    pi, mu, sigma, hidden = out  # unpacks in the documented order
    assert pi.shape == mu.shape == sigma.shape == (5, 9, 2, model.n_components)
    assert (sigma > 0).all() and torch.allclose(pi.sum(-1), torch.ones(5, 9, 2), atol=1e-5)
    assert hidden[0].shape == (1, 5, model.hidden_dim)
    assert torch.allclose(out.log_pi.exp(), pi) and torch.allclose(out.log_sigma.exp(), sigma)


def test_step_by_step_equals_whole_sequence():
    torch.manual_seed(0)
    model = MDNRNN()
    z, a = torch.randn(2, 6, 2), torch.randn(2, 6, 2)
    full = model(z, a)
    hidden, mus = None, []
    for t in range(6):
        out = model(z[:, t:t + 1], a[:, t:t + 1], hidden)
        hidden = out.hidden
        mus.append(out.mu)
    assert torch.allclose(torch.cat(mus, 1), full.mu, atol=1e-5)


def test_predict_change_adds_current_state_to_means():
    torch.manual_seed(0)
    model = MDNRNN(predict_change=True)
    z, a = torch.randn(1, 1, 2), torch.randn(1, 1, 2)
    with_change = model(z, a).mu
    model.predict_change = False
    assert torch.allclose(with_change - model(z, a).mu, z.unsqueeze(-1).expand_as(with_change))


@pytest.mark.parametrize("z_shape, a_shape, message", [
    ((5, 2), (5, 2), r"z must have shape \(batch, time, 2\)"),
    ((1, 5, 3), (1, 5, 2), "latent_dim"),
    ((1, 5, 2), (1, 5, 4), "action_dim"),
    ((1, 5, 2), (1, 4, 2), "share batch and time"),
])
def test_bad_inputs_get_clear_errors(z_shape, a_shape, message):
    with pytest.raises(ValueError, match=message):
        MDNRNN()(torch.zeros(z_shape), torch.zeros(a_shape))
