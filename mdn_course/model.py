"""The MDN-RNN in three teachable pieces: memory, mixture head, and both together.

Shapes used throughout (B = batch, T = time steps, D = latent size,
A = action size, H = hidden size, K = mixture components):

* ``z``: (B, T, D) latent states, ``a``: (B, T, A) actions;
* ``WorldLSTM`` turns them into hidden states ``h``: (B, T, H);
* ``MDNHead`` turns each hidden state into, for every latent dimension
  separately (as in Ha & Schmidhuber's World Models), a mixture of K Gaussians:
  ``pi``, ``mu``, ``sigma`` each of shape (B, T, D, K).

Inside, the head works in log space (log-softmax weights, a bounded
log standard deviation) so training never takes the log of a zero or exponentiates
a huge number; ``pi`` and ``sigma`` are exposed for teaching and plotting.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["WorldLSTM", "MDNHead", "MDNRNN", "MixtureOutput", "LSTMState", "save_checkpoint", "load_checkpoint"]

LSTMState = Tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class MixtureOutput:
    """What ``MDNRNN.forward`` returns.

    Unpacks as ``pi, mu, sigma, hidden = model(z, a)``; also carries the
    log-space versions the loss should use (``log_pi``, ``log_sigma``).
    """

    pi: torch.Tensor          # (B, T, D, K), sums to 1 over K
    mu: torch.Tensor          # (B, T, D, K)
    sigma: torch.Tensor       # (B, T, D, K), positive
    hidden: LSTMState         # (h, c), each (1, B, H): feed back in to go on step by step
    log_pi: torch.Tensor      # (B, T, D, K)
    log_sigma: torch.Tensor   # (B, T, D, K)

    def __iter__(self) -> Iterator:
        return iter((self.pi, self.mu, self.sigma, self.hidden))

    def __len__(self) -> int:
        return 4


def _check_last_dim(name: str, x: torch.Tensor, expected: int, what: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] != expected:
        raise ValueError(
            f"{name} must have shape (batch, time, {expected}) [{what}], got {tuple(x.shape)}; "
            f"add missing dimensions with .unsqueeze(0) or .view(batch, time, {expected})"
        )


class WorldLSTM(nn.Module):
    """The memory: an LSTM reading the concatenated latent state and action."""

    def __init__(self, latent_dim: int, action_dim: int, hidden_dim: int = 64):
        super().__init__()
        self.latent_dim, self.action_dim, self.hidden_dim = latent_dim, action_dim, hidden_dim
        self.lstm = nn.LSTM(latent_dim + action_dim, hidden_dim, batch_first=True)

    def forward(self, z: torch.Tensor, a: torch.Tensor,
                hidden: Optional[LSTMState] = None) -> Tuple[torch.Tensor, LSTMState]:
        """(B, T, D) and (B, T, A) -> hidden states (B, T, H) and the final (h, c)."""
        _check_last_dim("z", z, self.latent_dim, "latent_dim")
        _check_last_dim("a", a, self.action_dim, "action_dim")
        if z.shape[:2] != a.shape[:2]:
            raise ValueError(f"z and a must share batch and time sizes, got z {tuple(z.shape)} and a {tuple(a.shape)}")
        return self.lstm(torch.cat([z, a], dim=-1), hidden)


class MDNHead(nn.Module):
    """Hidden state -> a mixture of K Gaussians for every latent dimension.

    One linear layer produces, per dimension and component, a weight logit, a
    mean and a raw log standard deviation. The log standard deviation is squashed
    smoothly into [log_sigma_min, log_sigma_max] so sigma can neither collapse to
    zero (infinite density, NaN loss) nor explode.
    """

    def __init__(self, hidden_dim: int, latent_dim: int, n_components: int = 5,
                 log_sigma_min: float = -7.0, log_sigma_max: float = 2.0):
        super().__init__()
        if n_components < 1:
            raise ValueError(f"n_components must be at least 1, got {n_components}")
        self.latent_dim, self.n_components = latent_dim, n_components
        self.log_sigma_min, self.log_sigma_max = log_sigma_min, log_sigma_max
        self.proj = nn.Linear(hidden_dim, 3 * latent_dim * n_components)

    def forward(self, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(..., H) -> log_pi, mu, log_sigma, each (..., D, K)."""
        out = self.proj(h).unflatten(-1, (3, self.latent_dim, self.n_components))
        logits, mu, raw_log_sigma = out.unbind(dim=-3)
        log_pi = F.log_softmax(logits, dim=-1)
        span = self.log_sigma_max - self.log_sigma_min
        log_sigma = self.log_sigma_min + span * torch.sigmoid(raw_log_sigma)
        return log_pi, mu, log_sigma


class MDNRNN(nn.Module):
    """World Models' memory: ``WorldLSTM`` followed by ``MDNHead``.

    ``predict_change=True`` (the default) makes the head predict the *change*
    z[t+1] - z[t]: the means it outputs are added to the current state. The
    distribution is the same kind of mixture, but the network no longer has to
    copy z[t] through the LSTM, which makes it learn faster and more precisely.
    """

    def __init__(self, latent_dim: int = 2, action_dim: int = 2, hidden_dim: int = 32,
                 n_components: int = 5, predict_change: bool = True):
        super().__init__()
        self.latent_dim, self.action_dim = latent_dim, action_dim
        self.hidden_dim, self.n_components = hidden_dim, n_components
        self.predict_change = predict_change
        self.memory = WorldLSTM(latent_dim, action_dim, hidden_dim)
        self.head = MDNHead(hidden_dim, latent_dim, n_components)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, z: torch.Tensor, a: torch.Tensor,
                hidden: Optional[LSTMState] = None) -> MixtureOutput:
        """z (B, T, D), a (B, T, A) -> mixture over z[t+1] for every t, and the LSTM state."""
        h, hidden = self.memory(z, a, hidden)
        log_pi, mu, log_sigma = self.head(h)
        if self.predict_change:
            mu = mu + z.unsqueeze(-1)
        return MixtureOutput(pi=log_pi.exp(), mu=mu, sigma=log_sigma.exp(), hidden=hidden,
                             log_pi=log_pi, log_sigma=log_sigma)


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(model: MDNRNN, path: Union[str, Path], **extra) -> Path:
    """Save ``model`` to ``path``: its ``state_dict``, the ``config`` that rebuilds it (``MDNRNN(**config)``)
    and any ``extra`` entries (``python -m mdn_course train`` adds its ``history``). Plain tensors and
    numbers only, so :func:`load_checkpoint` reads it with ``weights_only=True``."""
    path = Path(path)
    config = {"latent_dim": model.latent_dim, "action_dim": model.action_dim, "hidden_dim": model.hidden_dim,
              "n_components": model.n_components, "predict_change": model.predict_change}
    torch.save({"state_dict": model.state_dict(), "config": config, **extra}, path)
    return path


def load_checkpoint(path: Union[str, Path], map_location: Union[str, torch.device] = "cpu") -> Tuple[MDNRNN, dict]:
    """The model saved by :func:`save_checkpoint` at ``path``, and the whole checkpoint (its extras)."""
    saved = torch.load(path, map_location=map_location, weights_only=True)
    model = MDNRNN(**saved["config"])
    model.load_state_dict(saved["state_dict"])
    return model, saved
