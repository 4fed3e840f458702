"""V, the vision model: a small variational autoencoder (VAE) for the pixel world's frames.

A VAE (Kingma & Welling, 2014) squeezes each frame into a few numbers and draws it back:

* the **encoder** reads a frame and returns, for every latent number, a Gaussian belief about it:
  a mean ``mu`` and a log-variance ``log_var`` (the posterior q(u | frame));
* during training a latent ``u = mu + sigma * eps`` is drawn from that belief (the
  reparameterisation trick, so gradients flow through the draw), and the **decoder** draws the
  frame back from ``u`` (a Bernoulli brightness per pixel, so the reconstruction loss is the binary
  cross-entropy summed over pixels);
* the **KL term** ``KL(q(u | frame) || N(0, I))``, in closed form for Gaussians,
  ``0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)``, pulls every belief towards the standard normal
  prior. ``beta`` weights it (``beta = 1`` is the plain VAE bound). ``autoencoder=True`` trains the
  same network as a plain autoencoder: no draw, no KL, ``u = mu``.

The encoder is convolutional and ends in a **spatial soft-argmax** (Finn et al., 2016; Levine et al.,
2016): each of its feature maps becomes a probability over the picture, and the expected column and
the expected row of that probability say *where* the map lights up. A convolution knows what is in
a patch but not where the patch is; the soft-argmax adds the where. Latent 0's mean reads the
expected columns, latent 1's the expected rows (so they line up with the picture's axes, which the
memory's per-dimension mixtures need; see lesson 8); any further latent numbers and every
log-variance read both. The decoder is a small fully connected network from the latent to the 1,024
pixels, fed the latent as Fourier features (``FourierFeatures``): on a CPU it learns to draw the car
in two epochs, several times faster than transposed convolutions, and from every seed we tried.

Everything follows the model's device; frames of any leading shape (one frame, a batch, sequences
(N, T+1, H, W)) are encoded and decoded in one call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .pixel_world import PIXEL_WORLD
from .progress import progress_bar

__all__ = ["FrameVAE", "FourierFeatures", "VAEOutput", "VAEHistory", "kl_to_standard_normal", "vae_loss",
           "train_vae", "reconstruction_rms", "encode_frames", "lesson_frames", "train_lesson_vae"]


class VAEOutput(NamedTuple):
    """What ``FrameVAE.forward`` returns: the decoder's logits, the belief (mu, log_var) and the latent used."""

    logits: torch.Tensor   # (..., H, W): sigmoid(logits) is the drawn frame
    mu: torch.Tensor       # (..., L)
    log_var: torch.Tensor  # (..., L)
    latent: torch.Tensor   # (..., L): mu + sigma * eps (or mu)


class FourierFeatures(nn.Module):
    """(..., d) -> (..., 2n): sines and cosines of n fixed random projections of the input (Tancik et al., 2020).

    A small network fed a position as two plain numbers learns smooth functions of it first and
    sharp ones (a car two pixels wide, somewhere in the picture) only slowly; fed these waves of
    many frequencies and directions it learns them in a few hundred steps. The projections are
    drawn once from their own seeded generator, so they are the same on every machine and run.
    """

    def __init__(self, in_features: int, n: int = 64, scale: float = 1.5, seed: int = 1234):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(in_features, n, generator=g) * scale)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        angles = u @ self.projection
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class FrameVAE(nn.Module):
    """V for ``size`` x ``size`` frames: convolutional soft-argmax encoder, fully connected decoder.

    ``encode(frames) -> (mu, log_var)``, ``decode(latents) -> frames``; both take any leading shape.
    """

    def __init__(self, latent_dim: int = 2, frame_size: int = PIXEL_WORLD.size, channels: int = 8,
                 keypoints: int = 8, hidden: int = 256, sharpness: float = 4.0, fourier_features: int = 64,
                 fourier_scale: float = 1.5):
        super().__init__()
        if latent_dim < 2:
            raise ValueError(f"latent_dim must be at least 2 (one number across, one up), got {latent_dim}")
        if frame_size % 2:
            raise ValueError(f"frame_size must be even, got {frame_size}")
        self.latent_dim, self.frame_size = latent_dim, frame_size
        self.features = nn.Sequential(nn.Conv2d(1, channels, 4, stride=2, padding=1), nn.ReLU(),
                                      nn.Conv2d(channels, keypoints, 3, padding=1))
        n = frame_size // 2
        grid = (torch.arange(n, dtype=torch.float32) + 0.5) / n * 2.0 - 1.0      # feature-map coordinates in [-1, 1]
        self.register_buffer("grid_across", grid.view(1, 1, 1, n), persistent=False)
        self.register_buffer("grid_up", grid.flip(0).view(1, 1, n, 1), persistent=False)
        self.log_sharpness = nn.Parameter(torch.tensor(float(sharpness)).log())   # how peaked each soft-argmax is
        self.mu_across = nn.Linear(keypoints, 1)
        self.mu_up = nn.Linear(keypoints, 1)
        self.mu_rest = nn.Linear(2 * keypoints, latent_dim - 2) if latent_dim > 2 else None
        self.log_var_head = nn.Linear(2 * keypoints, latent_dim)
        self.decoder = nn.Sequential(FourierFeatures(latent_dim, fourier_features, fourier_scale),
                                     nn.Linear(2 * fourier_features, hidden), nn.ReLU(),
                                     nn.Linear(hidden, frame_size * frame_size))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def _frames(self, frames: torch.Tensor) -> torch.Tensor:
        frames = torch.as_tensor(frames)
        size = self.frame_size
        if frames.dim() < 2 or tuple(frames.shape[-2:]) != (size, size):
            raise ValueError(f"frames must have shape (..., {size}, {size}), got {tuple(frames.shape)}; "
                             f"draw them with mdn_course.pixel_world.render")
        return frames.float().to(self.device)

    def keypoints(self, frames: torch.Tensor):
        """Where each feature map lights up: expected (across, up) positions, each (B, keypoints), in [-1, 1]."""
        maps = self.features(frames.reshape(-1, 1, self.frame_size, self.frame_size))
        b, k, h, w = maps.shape
        weights = F.softmax(maps.flatten(2) * self.log_sharpness.exp(), dim=-1).view(b, k, h, w)
        return (weights * self.grid_across).sum(dim=(2, 3)), (weights * self.grid_up).sum(dim=(2, 3))

    def encode(self, frames: torch.Tensor):
        """Frames (..., H, W) -> the posterior's mean and log-variance, each (..., L)."""
        frames = self._frames(frames)
        lead = frames.shape[:-2]
        across, up = self.keypoints(frames)
        both = torch.cat([across, up], dim=-1)
        parts = [self.mu_across(across), self.mu_up(up)] + ([self.mu_rest(both)] if self.mu_rest is not None else [])
        mu = torch.cat(parts, dim=-1)
        log_var = self.log_var_head(both)
        return mu.reshape(*lead, self.latent_dim), log_var.reshape(*lead, self.latent_dim)

    def _latents(self, latents: torch.Tensor) -> torch.Tensor:
        latents = torch.as_tensor(latents, dtype=torch.float32)
        if latents.dim() < 1 or latents.shape[-1] != self.latent_dim:
            raise ValueError(f"latents must have shape (..., {self.latent_dim}), got {tuple(latents.shape)}")
        return latents.to(self.device)

    def decode_logits(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (..., L) -> per-pixel logits (..., H, W)."""
        return self.decoder(self._latents(latents)).unflatten(-1, (self.frame_size, self.frame_size))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (..., L) -> frames (..., H, W) with brightness in [0, 1]."""
        return torch.sigmoid(self.decode_logits(latents))

    def forward(self, frames: torch.Tensor, sample: bool = True,
                generator: Optional[torch.Generator] = None) -> VAEOutput:
        """Encode, draw a latent from the posterior (``sample=False``: use its mean), decode."""
        mu, log_var = self.encode(frames)
        latent = mu
        if sample:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            latent = mu + torch.exp(0.5 * log_var) * eps
        return VAEOutput(self.decode_logits(latent), mu, log_var, latent)


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, 1)) per latent number, in closed form: (..., L) nats."""
    return 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var)


def vae_loss(output: VAEOutput, frames: torch.Tensor, beta: float = 1.0):
    """(loss, reconstruction, kl), each the mean over frames of a per-frame sum, in nats.

    reconstruction: binary cross-entropy of the frame's brightness under the decoder, summed over
    pixels; kl: ``kl_to_standard_normal`` summed over latent numbers; loss = reconstruction + beta * kl.
    """
    frames = frames.to(output.logits.device)
    reconstruction = F.binary_cross_entropy_with_logits(output.logits, frames, reduction="none").sum(dim=(-1, -2))
    kl = kl_to_standard_normal(output.mu, output.log_var).sum(dim=-1)
    return (reconstruction + beta * kl).mean(), reconstruction.mean(), kl.mean()


@torch.no_grad()
def encode_frames(model: FrameVAE, frames: torch.Tensor, batch_size: int = 8192):
    """Posterior means and log-variances of frames (N, ..., H, W), a batch of frames at a time: each (N, ..., L)."""
    was_training = model.training
    model.eval()
    mus, log_vars = [], []
    for start in range(0, frames.shape[0], batch_size):
        mu, log_var = model.encode(frames[start:start + batch_size])
        mus.append(mu)
        log_vars.append(log_var)
    model.train(was_training)
    return torch.cat(mus), torch.cat(log_vars)


@torch.no_grad()
def reconstruction_rms(model: FrameVAE, frames: torch.Tensor) -> float:
    """Root-mean-square brightness error of ``decode(mu)`` against ``frames`` (fixed data, no sampling)."""
    mu, _ = encode_frames(model, frames)
    total, count = 0.0, 0
    for start in range(0, mu.shape[0], 8192):
        drawn = model.decode(mu[start:start + 8192])
        total += float((drawn - frames[start:start + 8192].to(drawn.device)).pow(2).sum())
        count += drawn.numel()
    return (total / count) ** 0.5


@dataclass
class VAEHistory:
    """Per epoch: training loss (mean of the minibatches) and, on the held-out frames (no_grad,
    posterior means), the reconstruction's RMS brightness error and the mean KL per frame."""

    train_loss: List[float] = field(default_factory=list)
    heldout_rms: List[float] = field(default_factory=list)
    heldout_kl: List[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


@torch.no_grad()
def _heldout_kl(model: FrameVAE, frames: torch.Tensor) -> float:
    mu, log_var = encode_frames(model, frames)
    return float(kl_to_standard_normal(mu, log_var).sum(dim=-1).mean())


def train_vae(model: FrameVAE, frames: torch.Tensor, *, epochs: int = 4, batch_size: int = 64, lr: float = 5e-3,
              beta: float = 1.0, autoencoder: bool = False, heldout_fraction: float = 0.1, seed: int = 0,
              warmup: float = 0.25, progress: bool = True) -> VAEHistory:
    """Fit V to frames (N, H, W) by minimising ``vae_loss``; return the per-epoch history.

    Adam with a one-cycle learning-rate schedule peaking at ``lr`` and ending four orders of
    magnitude lower, so the weights have settled when training stops. The KL term's weight rises
    from 0 to ``beta`` over the first ``warmup`` share of the steps (Bowman et al., 2016): early on
    the decoder cannot use the latent yet, and a full KL would switch the latent off before it can. The posterior draws and the
    minibatch order come from a generator seeded with ``seed``; frames move to the model's device a
    batch at a time. ``autoencoder=True`` trains a plain autoencoder (no draw, no KL term).
    """
    frames = torch.as_tensor(frames, dtype=torch.float32)
    if frames.dim() != 3:
        raise ValueError(f"frames must be (N, H, W) for training, got {tuple(frames.shape)}; "
                         f"flatten sequences with frames.reshape(-1, H, W)")
    if not 0.0 < heldout_fraction < 1.0:
        raise ValueError(f"heldout_fraction must be between 0 and 1, got {heldout_fraction}")
    device = model.device
    g = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed)
    order = torch.randperm(frames.shape[0], generator=g)
    n_held = max(1, int(round(heldout_fraction * frames.shape[0])))
    held, train = frames[order[:n_held]], frames[order[n_held:]]
    n = train.shape[0]
    steps_per_epoch = max(1, n // batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch)
    history = VAEHistory()
    started = time.perf_counter()
    model.train()
    total_steps, done = epochs * steps_per_epoch, 0
    for _ in progress_bar(range(epochs), desc="training V", unit="epoch", disable=not progress):
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for step in range(steps_per_epoch):
            weight = 0.0 if autoencoder else beta * min(1.0, done / max(1.0, warmup * total_steps))
            done += 1
            batch = train[perm[step * batch_size:(step + 1) * batch_size]].to(device)
            output = model(batch, sample=not autoencoder, generator=noise)
            loss, _, _ = vae_loss(output, batch, beta=weight)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        history.train_loss.append(total / steps_per_epoch)
        history.heldout_rms.append(reconstruction_rms(model, held))
        history.heldout_kl.append(_heldout_kl(model, held))
    history.seconds = time.perf_counter() - started
    model.eval()
    return history


def lesson_frames(z: torch.Tensor, n_frames: int = 16384, seed: int = 0, margin: float = 0.3) -> torch.Tensor:
    """V's training pictures: frames (n_frames, H, W), half of the data's states, half spread over the view.

    Half are states drawn at random from the sequences ``z`` (N, T+1, 2), so V is best where the
    world's random walks spend their time. We own the camera, so the other half show the car at
    states spread evenly over the view (within ``margin`` world units of the edge): a V trained on
    the data alone draws the car poorly where the data rarely go, which is where dreams that head
    right end up. The states come from a generator seeded with ``seed``, in a shuffled order.
    """
    from .pixel_world import render

    g = torch.Generator().manual_seed(seed)
    states = torch.as_tensor(z, dtype=torch.float32).reshape(-1, 2)
    from_data = states[torch.randperm(states.shape[0], generator=g)[:n_frames // 2]]
    half = PIXEL_WORLD.view - margin
    spread = (torch.rand(n_frames - from_data.shape[0], 2, generator=g) * 2.0 - 1.0) * half
    mixed = torch.cat([from_data, spread])
    return render(mixed[torch.randperm(mixed.shape[0], generator=g)])


def train_lesson_vae(z: torch.Tensor, seed: int = 0, *, autoencoder: bool = False, n_frames: int = 16384,
                     epochs: int = 2, device=None, progress: bool = True):
    """Lesson 8's V: ``FrameVAE()`` trained on ``lesson_frames(z, n_frames, seed)`` with ``train_vae``'s defaults.

    Seeds torch, builds the model on ``device`` (default ``get_device()``) and returns
    ``(model, history)``. ``autoencoder=True`` trains the same network as a plain autoencoder.
    """
    from .device import get_device, set_seed

    frames = lesson_frames(z, n_frames, seed)
    set_seed(seed)
    model = FrameVAE().to(device or get_device())
    history = train_vae(model, frames, epochs=epochs, seed=seed, autoencoder=autoencoder, progress=progress)
    return model, history
