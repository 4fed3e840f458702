"""FeedForwardMDN and TransformerMDN: same interface as MDNRNN, no memory / causal attention."""
import torch

from mdn_course import dream, evaluate_nll, generate_synthetic_data
from mdn_course.architectures import FeedForwardMDN, TransformerMDN


def _inputs(seed=0, b=3, t=6):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 2, generator=g), torch.randn(b, t, 2, generator=g)


def test_feed_forward_sees_only_the_present():
    torch.manual_seed(0)
    model = FeedForwardMDN()
    z, a = _inputs()
    out = model(z, a)
    assert out.mu.shape == (3, 6, 2, 5) and out.hidden is None
    z2 = z.clone()
    z2[:, 2] += 5.0                                   # change one step: only that step's output moves
    out2 = model(z2, a)
    changed = (out2.mu - out.mu).abs().amax(dim=(0, 2, 3)) > 1e-6
    assert changed.tolist() == [False, False, True, False, False, False]


def test_transformer_is_causal_and_steps_like_a_whole_sequence():
    torch.manual_seed(0)
    model = TransformerMDN().eval()
    z, a = _inputs()
    whole = model(z, a)
    z2 = z.clone()
    z2[:, 4] += 5.0                                   # the future must not change the past
    assert torch.allclose(model(z2, a).mu[:, :4], whole.mu[:, :4], atol=1e-5)
    hidden, parts = None, []
    for t in range(z.shape[1]):                      # step by step, carrying the past inputs
        out = model(z[:, t:t + 1], a[:, t:t + 1], hidden)
        hidden = out.hidden
        parts.append(out.mu)
    assert hidden.shape == (3, 6, 4)
    assert torch.allclose(torch.cat(parts, dim=1), whole.mu, atol=1e-5)


def test_both_work_with_dream_and_evaluate_nll():
    z, a = generate_synthetic_data(8, seq_len=4, seed=0)
    for model in (FeedForwardMDN(), TransformerMDN(n_layers=1)):
        paths = dream(model, torch.zeros(2), torch.zeros(5, 2), temperature=1.0, n=4)
        assert paths.shape == (4, 6, 2)
        assert torch.isfinite(torch.tensor(evaluate_nll(model, z, a)))


def test_transformer_rejects_widths_heads_cannot_split():
    try:
        TransformerMDN(hidden_dim=30, n_heads=4)
    except ValueError as exc:
        assert "divisible" in str(exc)
    else:
        raise AssertionError("expected a ValueError for hidden_dim=30, n_heads=4")
