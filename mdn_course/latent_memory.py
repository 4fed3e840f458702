"""M on V's latents: the course's MDN-RNN trained on what V makes of the frames, measured fairly.

In a World Model the memory never sees the state; it sees V's latent numbers. ``encode_sequences``
turns state sequences into latent sequences (render each state, encode each frame, keep the
posterior mean), and ``train_memory_on_latents`` trains the series' ``MDNRNN`` on them with
``train_model``, exactly as earlier lessons trained it on states.

Comparing the two memories needs care: a negative log-likelihood depends on the units it is
measured in (stretch the axes by 2 and every density halves). What does not depend on the units
is the **gap to the floor**, the KL divergence from the true next-step distribution to the
model's. In V's coordinates the floor follows from the change of variables ``u = f(z)``,
``f = encoder mean after render``:

    -log p_u(u') = -log p_z(z') + log |det J_f(z')|,

so ``latent_floor`` is the state floor plus the average ``log |det J|`` at the next states, with
the Jacobian of V's encoder (through ``render``) taken by central differences. This needs
``f`` to be one-to-one where the data are, which holds while the car is in the picture:
``in_view_sequences`` keeps the sequences whose every state is in view.

``latents_to_states`` goes the other way (decode, then read the car's position off the picture),
so dreams in V's latent space can be checked against the world's own rules.
"""
from __future__ import annotations

from typing import Tuple

import torch

from .data import WORLD, roll_out, rollout_float64, true_next_state_mixture
from .loss import mdn_nll_from_logs
from .model import MDNRNN
from .pixel_world import PIXEL_WORLD, PixelWorldSpec, in_view, locate_car, render
from .training import TrainingHistory, train_model
from .vae import FrameVAE

__all__ = ["in_view_sequences", "encode_sequences", "latent_floor", "train_memory_on_latents",
           "latents_to_states", "real_futures"]

_CHUNK = 8192   # frames per batch: 8,192 frames of 32 x 32 floats are 32 MiB


def in_view_sequences(z: torch.Tensor, a: torch.Tensor, margin: float = 0.4,
                      spec: PixelWorldSpec = PIXEL_WORLD) -> Tuple[torch.Tensor, torch.Tensor]:
    """The sequences (z (N, T+1, 2), a (N, T, 2)) whose every state keeps the car in the picture."""
    rollout_float64(z, a)  # shape check with a clear message
    keep = in_view(z, margin=margin, spec=spec).all(dim=1)
    return z[keep], a[keep]


@torch.no_grad()
def encode_sequences(vae: FrameVAE, z: torch.Tensor, spec: PixelWorldSpec = PIXEL_WORLD) -> torch.Tensor:
    """States (..., 2) -> V's posterior means (..., L) on the CPU, rendering and encoding a batch of frames at a time."""
    was_training = vae.training
    vae.eval()
    flat = torch.as_tensor(z, dtype=torch.float32).reshape(-1, 2)
    out = torch.cat([vae.encode(render(flat[i:i + _CHUNK].to(vae.device), spec))[0].cpu()
                     for i in range(0, flat.shape[0], _CHUNK)])
    vae.train(was_training)
    return out.reshape(*z.shape[:-1], vae.latent_dim)


@torch.no_grad()
def _log_abs_det_jacobian(vae: FrameVAE, states: torch.Tensor, spec: PixelWorldSpec, step: float = 0.01) -> torch.Tensor:
    """log |det d mu(render(z)) / dz| at states (M, 2): (M,) float64 on the CPU.

    Central differences over ``step`` world units (a twentieth of a pixel): four encodings of
    shifted frames, batched, cheaper on a CPU than backpropagating twice through the encoder.
    """
    if vae.latent_dim != 2:
        raise ValueError(f"the change of variables needs as many latent numbers as state numbers (2); "
                         f"this V has latent_dim={vae.latent_dim}")
    shifts = torch.tensor([[step, 0.0], [-step, 0.0], [0.0, step], [0.0, -step]])
    shifted = (states.reshape(-1, 1, 2).float() + shifts).reshape(-1, 2)           # (4M, 2)
    mu = encode_sequences(vae, shifted, spec).double().reshape(-1, 4, 2)
    columns = torch.stack([mu[:, 0] - mu[:, 1], mu[:, 2] - mu[:, 3]], dim=-1) / (2 * step)  # (M, 2 latents, 2 states)
    return torch.linalg.slogdet(columns)[1]


def latent_floor(vae: FrameVAE, z: torch.Tensor, a: torch.Tensor, spec: PixelWorldSpec = PIXEL_WORLD) -> float:
    """The world's Bayes floor measured in V's coordinates: mean NLL per step (nats) of the true dynamics.

    ``z`` (N, T+1, 2) and ``a`` (N, T, 2) are true states and actions with the car in view
    (``in_view_sequences``); the result is ``bayes_optimal_nll(z, a)`` plus the mean
    ``log |det J|`` of V's encoding at the next states, computed in float64.
    """
    z64, a64 = rollout_float64(z, a)
    pi, mu, sigma = true_next_state_mixture(z64[:, :-1], a64)
    nll = mdn_nll_from_logs(torch.log(pi), mu, torch.log(sigma), z64[:, 1:], reduction="none")
    log_det = _log_abs_det_jacobian(vae, z[:, 1:].reshape(-1, 2).float(), spec).reshape(nll.shape)
    return float((nll + log_det).mean())


def train_memory_on_latents(vae: FrameVAE, z: torch.Tensor, a: torch.Tensor, *, seed: int = 0,
                            spec: PixelWorldSpec = PIXEL_WORLD, **train_kwargs
                            ) -> Tuple[MDNRNN, TrainingHistory, torch.Tensor]:
    """Train the series' ``MDNRNN`` on V's latents of the states ``z``: (model, history, latents).

    The frames are rendered from ``z`` and encoded by ``vae``; the memory (on V's device) is
    trained with ``train_model(model, latents, a, seed=seed, **train_kwargs)``. Seeds torch first,
    so the same call gives the same memory.
    """
    from .device import set_seed

    latents = encode_sequences(vae, z, spec)
    set_seed(seed)
    model = MDNRNN(latent_dim=vae.latent_dim, action_dim=a.shape[-1]).to(vae.device)
    history = train_model(model, latents, a, seed=seed, **train_kwargs)
    return model, history, latents


@torch.no_grad()
def latents_to_states(vae: FrameVAE, latents: torch.Tensor, spec: PixelWorldSpec = PIXEL_WORLD) -> torch.Tensor:
    """Latents (..., L) -> the car's state (..., 2) read off V's drawings with ``locate_car`` (on the CPU)."""
    flat = torch.as_tensor(latents, dtype=torch.float32).reshape(-1, vae.latent_dim)
    out = torch.cat([locate_car(vae.decode(flat[i:i + _CHUNK]), spec).cpu() for i in range(0, flat.shape[0], _CHUNK)])
    return out.reshape(*latents.shape[:-1], 2)


def real_futures(start: torch.Tensor, actions: torch.Tensor, n: int, *, generator: torch.Generator) -> torch.Tensor:
    """``n`` futures of the real world from one ``start`` (2,) under one action plan (T, 2): (n, T+1, 2).

    The world's own dynamics (``data.roll_out``) with fresh noise and fresh coins at every fork,
    drawn from ``generator`` (a CPU generator): the yardstick dreams are compared with.
    """
    start = torch.as_tensor(start, dtype=torch.float32).reshape(1, 2).expand(n, 2)
    actions = torch.as_tensor(actions, dtype=torch.float32)
    if actions.dim() != 2 or actions.shape[-1] != 2:
        raise ValueError(f"actions must be one plan of shape (T, 2), got {tuple(actions.shape)}")
    steps = actions.shape[0]
    noise = torch.randn(n, steps, 2, generator=generator) * WORLD.noise_std
    fork_up = torch.rand(n, steps, generator=generator) < 0.5
    return roll_out(start, actions.expand(n, steps, 2), noise, fork_up)
