"""The fork world as pictures: a car on the plane, drawn from the state by one batched function.

A World Model's memory never sees the state of the world; it sees what V (the vision model) makes
of a camera's frames. Lesson 8 gives the course's world a camera. ``render`` draws each state
``z = (z[0], z[1])`` as a small grey picture of the square ``[-3.2, 3.2]`` x ``[-3.2, 3.2]`` of the
plane (``z[0]`` left to right, ``z[1]`` bottom to top):

* the car: a round spot of brightness 1 at ``z``, a Gaussian with a standard deviation of 2.5 pixels
  (0.5 world units), so a move smaller than a pixel still changes the picture;
* the ground right of the fork line ``z[0] = 0.5`` is shaded (brightness 0.25), so the fork is
  visible at a glance; the car is drawn over it (``shade + (1 - shade) * spot``).

Nothing else changes: frames are drawn from the states of ``data.py``, so the fork, its floor and
everything earlier lessons measured still hold. Rendering is one separable outer product of two
1-D Gaussians per frame, for any batch shape at once, on the states' device.

Two readers of frames, used to check pictures the networks draw:

* ``locate_car`` reads a state back from a frame (the state whose rendering fits the frame best,
  found from the centre of its brightest part): for a rendered frame it returns ``z``.
* ``world_frame_error`` says how far a picture is from *any* picture the world can draw: the
  root-mean-square brightness difference between the frame and the world's own rendering of the
  car where ``locate_car`` finds it. Rendered frames score 0 (with the car in view); a blend of
  two cars, a smear or a missing car score far higher, because no single state draws them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import WORLD

__all__ = ["PixelWorldSpec", "PIXEL_WORLD", "render", "locate_car", "world_frame_error", "in_view",
           "pixel_centres", "ground"]


@dataclass(frozen=True)
class PixelWorldSpec:
    """The camera: frame size in pixels, the half-width of the square it shows, the car and the ground."""

    size: int = 32                 # frames are size x size pixels
    view: float = 3.2              # the frame shows [-view, view] in both z[0] and z[1]
    car_width: float = 2.5         # standard deviation of the car's spot, in pixels
    fork_shade: float = 0.25       # brightness of the ground right of the fork line
    fork_threshold: float = WORLD.fork_threshold

    @property
    def pixel(self) -> float:
        """World units per pixel."""
        return 2.0 * self.view / self.size


PIXEL_WORLD = PixelWorldSpec()


def pixel_centres(spec: PixelWorldSpec = PIXEL_WORLD, device=None) -> torch.Tensor:
    """World coordinate of each pixel column's centre, left to right, shape (size,).

    Rows use the same values from top to bottom in reverse (row 0 is the top, largest z[1]).
    """
    return -spec.view + (torch.arange(spec.size, device=device, dtype=torch.float32) + 0.5) * spec.pixel


def ground(spec: PixelWorldSpec = PIXEL_WORLD, device=None) -> torch.Tensor:
    """Brightness of the empty ground in each column, shape (size,): shaded right of the fork line."""
    return (pixel_centres(spec, device) > spec.fork_threshold).float() * spec.fork_shade


def _check_states(states: torch.Tensor) -> torch.Tensor:
    states = torch.as_tensor(states)
    if not states.is_floating_point():
        states = states.float()
    if states.dim() < 1 or states.shape[-1] != 2:
        raise ValueError(f"states must have shape (..., 2) (z[0], z[1]), got {tuple(states.shape)}; "
                         f"for one state pass a tensor of shape (2,)")
    return states


def _check_frames(frames: torch.Tensor, spec: PixelWorldSpec) -> torch.Tensor:
    frames = torch.as_tensor(frames)
    if frames.dim() < 2 or tuple(frames.shape[-2:]) != (spec.size, spec.size):
        raise ValueError(f"frames must have shape (..., {spec.size}, {spec.size}), got {tuple(frames.shape)}")
    return frames.float()


def render(states: torch.Tensor, spec: PixelWorldSpec = PIXEL_WORLD) -> torch.Tensor:
    """Draw states (..., 2) as frames (..., size, size) with brightness in [0, 1], on the states' device.

    Deterministic and batched: any leading shape (one state, a batch, sequences (N, T+1, 2)) is
    drawn in one go. Differentiable in ``states``, so V's encoder can be differentiated through it.
    """
    states = _check_states(states)
    x = pixel_centres(spec, states.device).to(states.dtype)
    width = spec.car_width * spec.pixel
    across = torch.exp(-0.5 * ((x - states[..., 0:1]) / width) ** 2)             # (..., size): columns
    down = torch.exp(-0.5 * ((x.flip(0) - states[..., 1:2]) / width) ** 2)       # (..., size): rows, top first
    car = down.unsqueeze(-1) * across.unsqueeze(-2)                              # (..., size, size)
    shade = ground(spec, states.device).to(states.dtype)
    return shade + (1.0 - shade) * car


def in_view(states: torch.Tensor, margin: float = 0.4, spec: PixelWorldSpec = PIXEL_WORLD) -> torch.Tensor:
    """(...,) bool: the car at ``states`` is inside the frame with ``margin`` world units to spare."""
    states = _check_states(states)
    return (states.abs() <= spec.view - margin).all(dim=-1)


def _centroid(frames: torch.Tensor, spec: PixelWorldSpec, threshold: float) -> torch.Tensor:
    shade = ground(spec, frames.device)
    car = ((frames - shade) / (1.0 - shade) - threshold).clamp(min=0.0)
    x = pixel_centres(spec, frames.device)
    mass = car.sum(dim=(-1, -2)).clamp(min=1e-8)
    across = (car.sum(dim=-2) * x).sum(dim=-1) / mass
    up = (car.sum(dim=-1) * x.flip(0)).sum(dim=-1) / mass
    return torch.stack([across, up], dim=-1)


def locate_car(frames: torch.Tensor, spec: PixelWorldSpec = PIXEL_WORLD, threshold: float = 0.3,
               refine_steps: int = 4) -> torch.Tensor:
    """Read the car's state (..., 2) back from frames (..., size, size): the state whose rendering fits best.

    Starts from the brightness-weighted centre of the car's core (the part brighter than
    ``threshold`` once the ground is removed), then takes ``refine_steps`` Gauss-Newton steps on
    the squared difference between the frame and ``render(state)``, all frames at once. The steps
    matter for a car cut off by the frame's edge, whose visible core is not centred on it. A frame
    with nothing that bright starts from the centre of the view, (0, 0).
    """
    frames = _check_frames(frames, spec)
    state = _centroid(frames, spec, threshold)
    x = pixel_centres(spec, frames.device)
    width2 = (spec.car_width * spec.pixel) ** 2
    shade = ground(spec, frames.device)
    seen = frames - shade                                      # the car's part of each frame, (..., size, size)
    for _ in range(refine_steps):
        # render(state) - shade = outer(rows, cols): separable, so every sum below is two small products.
        dx = x - state[..., 0:1]                               # (..., size) per column
        dy = x.flip(0) - state[..., 1:2]                       # (..., size) per row
        cols = torch.exp(-0.5 * dx ** 2 / width2) * (1.0 - shade)
        rows = torch.exp(-0.5 * dy ** 2 / width2)
        cols_d, rows_d = cols * dx / width2, rows * dy / width2  # derivatives along z[0] and z[1]
        rr, rd, dd = (rows * rows).sum(-1), (rows * rows_d).sum(-1), (rows_d * rows_d).sum(-1)
        cc, cd, ee = (cols * cols).sum(-1), (cols * cols_d).sum(-1), (cols_d * cols_d).sum(-1)
        a, b, c = rr * ee + 1e-6, rd * cd, dd * cc + 1e-6      # normal equations [[a, b], [b, c]]
        r0 = torch.einsum("...i,...ij,...j->...", rows, seen, cols_d) - rr * cd
        r1 = torch.einsum("...i,...ij,...j->...", rows_d, seen, cols) - rd * cc
        det = a * c - b * b
        step = torch.stack([(c * r0 - b * r1) / det, (a * r1 - b * r0) / det], dim=-1)
        state = state + step.clamp(-4 * spec.pixel, 4 * spec.pixel)   # at most 4 pixels a step
    return state


def world_frame_error(frames: torch.Tensor, spec: PixelWorldSpec = PIXEL_WORLD, reduction: str = "max") -> torch.Tensor:
    """(...,) how far each frame is from the nearest frame the world can draw, in brightness (0 to 1).

    "Nearest" is the world's rendering of the car where ``locate_car`` reads it, so any frame
    ``render`` drew scores 0. ``reduction="max"`` (the default) is the largest difference at any
    pixel: a picture no single state can draw (two half cars, a smear, no car) has a pixel far off
    wherever the fitted car is put. ``"rms"`` is the root-mean-square difference over the pixels.
    """
    if reduction not in ("max", "rms"):
        raise ValueError(f"reduction must be 'max' or 'rms', got {reduction!r}")
    frames = _check_frames(frames, spec)
    diff = frames - render(locate_car(frames, spec), spec)
    if reduction == "max":
        return diff.abs().amax(dim=(-1, -2))
    return diff.pow(2).mean(dim=(-1, -2)).sqrt()
