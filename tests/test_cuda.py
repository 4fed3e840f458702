"""The same code on a GPU: runs only where CUDA is available (Colab), skipped elsewhere.

Nothing in the package assumes the CPU: models go to ``get_device()``, data move
with the model, and sampling draws its random numbers on the model's device.
"""
import pytest
import torch

from mdn_course import MDNRNN, dream, evaluate_nll, generate_synthetic_data, get_device, mdn_loss, predict_next, train_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (runs in Colab)")


def test_get_device_prefers_cuda():
    assert get_device().type == "cuda"


def test_training_dreaming_and_loss_on_gpu():
    z, a = generate_synthetic_data(128, seq_len=6, seed=0)
    model = MDNRNN().cuda()
    history = train_model(model, z, a, epochs=2, batch_size=32, progress=False)
    assert len(history.heldout_nll) == 2
    assert isinstance(evaluate_nll(model, z, a), float)
    traj = dream(model, torch.zeros(2), torch.zeros(5, 2), n=16, temperature=0.7)
    assert traj.device.type == "cuda" and traj.shape == (16, 6, 2)
    out = predict_next(model, torch.tensor([1.0, 0.0]))
    assert out.pi.device.type == "cuda"
    target = torch.zeros(1, 2, device="cuda")
    assert torch.isfinite(mdn_loss(out.pi, out.mu, out.sigma, target))
    g = torch.Generator(device="cuda").manual_seed(0)
    first = dream(model, torch.zeros(2), torch.zeros(5, 2), n=4, generator=g)
    g.manual_seed(0)
    assert torch.equal(first, dream(model, torch.zeros(2), torch.zeros(5, 2), n=4, generator=g))
