"""V (lesson 8): the VAE's maths against closed forms, its shapes and training recipe, and M on V's latents
(the change-of-variables floor pinned to a linear encoder whose Jacobian is known)."""
import math

import pytest
import torch
from torch.nn import functional as F

from mdn_course import MDNRNN, bayes_optimal_nll, generate_synthetic_data, set_seed
from mdn_course import vae as vae_module
from mdn_course.latent_memory import (encode_sequences, in_view_sequences, latent_floor, latents_to_states,
                                      real_futures, train_memory_on_latents)
from mdn_course.pixel_world import PIXEL_WORLD, locate_car, render
from mdn_course.vae import (FourierFeatures, FrameVAE, VAEOutput, encode_frames, kl_to_standard_normal, lesson_frames,
                            reconstruction_rms, train_vae, vae_loss)

S = PIXEL_WORLD.size


def test_kl_matches_torch_distributions_and_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    ours = kl_to_standard_normal(mu, log_var)
    q = torch.distributions.Normal(mu, (0.5 * log_var).exp())
    assert torch.allclose(ours, torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)), atol=1e-6)
    draws = q.sample((200_000,))
    monte_carlo = (q.log_prob(draws) - torch.distributions.Normal(0.0, 1.0).log_prob(draws)).mean(0)
    assert torch.allclose(ours, monte_carlo, atol=0.03)
    assert torch.equal(kl_to_standard_normal(torch.zeros(4), torch.zeros(4)), torch.zeros(4))   # the prior itself


def test_vae_loss_is_summed_pixel_cross_entropy_plus_beta_kl():
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(5, S, S, generator=g)
    out = VAEOutput(torch.randn(5, S, S, generator=g), torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g),
                    torch.zeros(5, 2))
    loss, reconstruction, kl = vae_loss(out, frames, beta=0.7)
    by_hand = -(frames * torch.log(torch.sigmoid(out.logits)) + (1 - frames) * torch.log(1 - torch.sigmoid(out.logits)))
    assert reconstruction.item() == pytest.approx(by_hand.sum(dim=(1, 2)).mean().item(), rel=1e-5)
    assert kl.item() == pytest.approx(kl_to_standard_normal(out.mu, out.log_var).sum(-1).mean().item(), rel=1e-6)
    assert loss.item() == pytest.approx(reconstruction.item() + 0.7 * kl.item(), rel=1e-6)


def test_encode_and_decode_take_any_leading_shape():
    set_seed(0)
    model = FrameVAE()
    frames = render(generate_synthetic_data(3, seq_len=4, seed=2)[0])            # (3, 5, 32, 32)
    mu, log_var = model.encode(frames)
    assert mu.shape == log_var.shape == (3, 5, 2)
    assert model.decode(mu).shape == (3, 5, S, S)
    assert torch.allclose(model.encode(frames[1, 2])[0], mu[1, 2], atol=1e-6)
    drawn = model.decode(torch.zeros(2))
    assert drawn.shape == (S, S) and 0 <= drawn.min() and drawn.max() <= 1
    assert FrameVAE(latent_dim=3).encode(frames)[0].shape == (3, 5, 3)


def test_forward_draws_from_the_posterior_and_the_generator_repeats_it():
    set_seed(0)
    model = FrameVAE()
    frames = render(torch.randn(4, 2))
    a = model(frames, generator=torch.Generator().manual_seed(5))
    b = model(frames, generator=torch.Generator().manual_seed(5))
    mean = model(frames, sample=False)
    assert torch.equal(a.latent, b.latent) and not torch.equal(a.latent, a.mu)
    assert torch.equal(mean.latent, mean.mu)
    with torch.no_grad():                                       # a belief of known width: sigma = exp(-1)
        model.log_var_head.weight.zero_()
        model.log_var_head.bias.fill_(-2.0)
    many = model(render(torch.zeros(20_000, 2)), generator=torch.Generator().manual_seed(6))
    assert (many.latent - many.mu).std(dim=0).tolist() == pytest.approx([math.exp(-1.0)] * 2, rel=0.03)
    assert (many.latent - many.mu).mean(dim=0).abs().max() < 0.01


def test_latent_zero_reads_columns_and_latent_one_rows():
    set_seed(0)
    model = FrameVAE()
    frames = render(torch.tensor([[2.0, -2.0], [-1.0, 0.5]]))
    across, up = model.keypoints(frames)
    assert across.shape == up.shape == (2, 8) and (across.abs() <= 1).all() and (up.abs() <= 1).all()
    mu, _ = model.encode(frames)
    original = model.keypoints
    model.keypoints = lambda f: (original(f)[0], original(f)[1] + 0.3)          # move only the rows
    moved_rows, _ = model.encode(frames)
    model.keypoints = lambda f: (original(f)[0] + 0.3, original(f)[1])          # move only the columns
    moved_columns, _ = model.encode(frames)
    assert torch.equal(moved_rows[:, 0], mu[:, 0]) and not torch.equal(moved_rows[:, 1], mu[:, 1])
    assert torch.equal(moved_columns[:, 1], mu[:, 1]) and not torch.equal(moved_columns[:, 0], mu[:, 0])


@pytest.mark.parametrize("bad", [torch.zeros(4, 28, 28), torch.zeros(32)])
def test_wrong_frames_are_refused_with_the_expected_shape(bad):
    with pytest.raises(ValueError, match=r"\(\.\.\., 32, 32\)"):
        FrameVAE().encode(bad)


def test_bad_construction_and_training_input_are_refused():
    with pytest.raises(ValueError, match="latent_dim"):
        FrameVAE(latent_dim=1)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        train_vae(FrameVAE(), torch.zeros(2, 3, S, S), epochs=1, progress=False)
    with pytest.raises(ValueError, match="heldout_fraction"):
        train_vae(FrameVAE(), torch.zeros(10, S, S), heldout_fraction=1.5, progress=False)


def test_fourier_features_are_fixed_waves():
    a, b = FourierFeatures(2, 16), FourierFeatures(2, 16)
    assert torch.equal(a.projection, b.projection)                              # same on every machine and run
    u = torch.tensor([[0.3, -1.2]])
    out = a(u)
    assert out.shape == (1, 32)
    assert torch.allclose(out[:, :16] ** 2 + out[:, 16:] ** 2, torch.ones(1, 16))
    assert not torch.equal(FourierFeatures(2, 16, seed=1).projection, a.projection)


def test_training_learns_repeats_itself_and_warms_the_kl_up(monkeypatch):
    weights = []
    real_loss = vae_module.vae_loss

    def spy(output, frames, beta=1.0):
        weights.append(beta)
        return real_loss(output, frames, beta)

    monkeypatch.setattr(vae_module, "vae_loss", spy)
    frames = lesson_frames(generate_synthetic_data(200, seed=3)[0], n_frames=2048, seed=0)
    runs = []
    for _ in range(2):
        set_seed(0)
        model = FrameVAE()
        before = reconstruction_rms(model, frames[:256])
        history = train_vae(model, frames, epochs=2, beta=0.8, seed=0, progress=False)
        runs.append(model)
    assert history.epochs == 2 and len(history.heldout_rms) == 2 and history.seconds > 0
    assert history.heldout_rms[-1] < 0.6 * before
    assert all(torch.equal(p, q) for p, q in zip(runs[0].state_dict().values(), runs[1].state_dict().values()))
    steps = len(weights) // 2
    first = weights[:steps]
    assert first[0] == 0.0 and first[-1] == pytest.approx(0.8) and all(x <= y for x, y in zip(first, first[1:]))
    assert first.index(0.8) <= int(0.25 * steps) + 1                            # warm-up: the first quarter
    weights.clear()
    set_seed(0)
    train_vae(FrameVAE(), frames, epochs=1, autoencoder=True, progress=False)
    assert set(weights) == {0.0}


def test_lesson_frames_mix_the_data_with_the_whole_view():
    z, _ = generate_synthetic_data(300, seq_len=10, seed=4)
    frames = lesson_frames(z, n_frames=1000, seed=0)
    assert frames.shape == (1000, S, S) and torch.equal(frames, lesson_frames(z, n_frames=1000, seed=0))
    where = locate_car(frames)
    assert (where.abs() <= PIXEL_WORLD.view - 0.3 + 1e-3).sum() >= 500          # the spread half stays in the view
    assert (where.abs() < 0.5).all(dim=-1).float().mean() > 0.06                # the data half crowds the start


class LinearV:
    """A stand-in for V whose encoding is a known linear map of the state: u = A z + b."""

    latent_dim = 2
    device = torch.device("cpu")
    training = False

    def __init__(self, a, b):
        self.a, self.b = a, b

    def eval(self):
        return self

    def train(self, mode=True):
        return self

    def encode(self, frames):
        return locate_car(frames) @ self.a.T + self.b, torch.zeros(*frames.shape[:-2], 2)

    def decode(self, latents):
        return render(torch.linalg.solve(self.a, (latents - self.b).unsqueeze(-1)).squeeze(-1))


def test_latent_floor_is_the_state_floor_plus_log_det_of_a_linear_encoder():
    z, a = in_view_sequences(*generate_synthetic_data(60, seq_len=8, seed=5))
    matrix = torch.tensor([[1.7, 0.3], [-0.2, -1.3]])
    v = LinearV(matrix, torch.tensor([0.1, -0.4]))
    expected = bayes_optimal_nll(z, a) + math.log(abs(torch.linalg.det(matrix).item()))
    assert latent_floor(v, z, a) == pytest.approx(expected, abs=2e-3)
    u = encode_sequences(v, z)
    assert u.shape == z.shape and torch.allclose(u, z @ matrix.T + v.b, atol=1e-3)
    assert torch.allclose(latents_to_states(v, u), z, atol=1e-3)


def test_latent_floor_needs_as_many_latents_as_states():
    z, a = generate_synthetic_data(4, seq_len=3, seed=6)
    with pytest.raises(ValueError, match="latent_dim=3"):
        latent_floor(FrameVAE(latent_dim=3), z, a)


def test_in_view_sequences_keeps_whole_sequences_with_the_car_in_the_picture():
    z, a = generate_synthetic_data(2000, seq_len=20, seed=0)
    kept_z, kept_a = in_view_sequences(z, a)
    assert kept_z.shape[0] == kept_a.shape[0] and 0.9 * 2000 < kept_z.shape[0] < 2000
    assert (kept_z.abs() <= PIXEL_WORLD.view - 0.4).all()
    with pytest.raises(ValueError):
        in_view_sequences(z[:, :5], a)


def test_real_futures_follow_the_worlds_dynamics():
    plan = torch.tensor([1.0, 0.0]).expand(10, 2)
    futures = real_futures(torch.tensor([0.0, 0.0]), plan, 4000, generator=torch.Generator().manual_seed(0))
    assert futures.shape == (4000, 11, 2) and (futures[:, 0] == 0).all()
    step = futures[:, 1:] - futures[:, :-1]
    assert step[..., 0].mean().item() == pytest.approx(0.3 * math.tanh(1.0), abs=0.005)
    forked = futures[:, :-1, 0] > 0.5
    assert ((step[..., 1][forked].abs() - 0.4).abs() < 0.25).all()
    assert (step[..., 1][forked] > 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    again = real_futures(torch.tensor([0.0, 0.0]), plan, 4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(futures, again)
    with pytest.raises(ValueError, match=r"\(T, 2\)"):
        real_futures(torch.zeros(2), torch.zeros(3, 10, 2), 5, generator=torch.Generator())


def test_memory_on_latents_trains_the_series_model_on_encoded_frames():
    z, a = in_view_sequences(*generate_synthetic_data(40, seq_len=6, seed=7))
    set_seed(0)
    v = FrameVAE()
    model, history, latents = train_memory_on_latents(v, z, a, epochs=2, progress=False)
    assert isinstance(model, MDNRNN) and model.latent_dim == 2 and history.epochs == 2
    assert latents.shape == z.shape and torch.allclose(latents, encode_frames(v, render(z))[0], atol=1e-5)
