"""Pictures of the pixel world: frame grids, film strips, long exposures and an animated GIF.

* ``frame_grid`` draws rows of frames (for example, frames above V's reconstructions of them).
* ``film_strip`` draws futures side by side: one row per future (real, dreamed at tau = 1, ...),
  one column per step, and a last column with a **long exposure** (the brightest value each
  pixel took over the whole future, or over a batch of futures), which shows the paths in one picture.
* ``dream_gif`` turns the same rows into an animated GIF with Pillow (which comes with
  matplotlib), one panel per future, playing in step; ``show_gif`` displays it in a notebook.
  A GIF plays in JupyterLab, classic Jupyter and Colab alike, needs no ffmpeg and no JavaScript,
  and stays small (a few tens of kilobytes for these frames).

Frames are drawn with the ``cividis`` colour map (designed to read the same with colour-blind
vision) over the world's coordinates, with the fork line ``z[0] = 0.5`` marked dashed.
"""
from __future__ import annotations

import io
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from .pixel_world import PIXEL_WORLD, PixelWorldSpec, ground

__all__ = ["COLOUR_MAP", "frame_grid", "long_exposure", "film_strip", "dream_gif", "show_gif"]

COLOUR_MAP = "cividis"


def _array(frames) -> np.ndarray:
    return torch.as_tensor(frames).detach().float().cpu().clamp(0.0, 1.0).numpy()


def _draw(ax, frame: np.ndarray, spec: PixelWorldSpec, fork_line: bool = True) -> None:
    ax.imshow(frame, cmap=COLOUR_MAP, vmin=0.0, vmax=1.0, extent=(-spec.view, spec.view, -spec.view, spec.view),
              interpolation="nearest")
    if fork_line:
        ax.axvline(spec.fork_threshold, color="white", linestyle="--", linewidth=0.8)
    ax.set_xticks([])
    ax.set_yticks([])


def frame_grid(rows: Mapping[str, torch.Tensor], *, title: str, column_titles: Optional[Sequence[str]] = None,
               spec: PixelWorldSpec = PIXEL_WORLD, size: float = 1.3):
    """One row of frames per entry of ``rows`` ({label: frames (n, H, W)}); returns the figure."""
    import matplotlib.pyplot as plt

    arrays = {label: _array(frames) for label, frames in rows.items()}
    n = max(len(a) for a in arrays.values())
    fig, axes = plt.subplots(len(arrays), n, figsize=(size * n + 1.2, size * len(arrays) + 0.6), squeeze=False)
    for r, (label, frames) in enumerate(arrays.items()):
        for c in range(n):
            ax = axes[r, c]
            if c < len(frames):
                _draw(ax, frames[c], spec)
            else:
                ax.axis("off")
            if r == 0 and column_titles is not None and c < len(column_titles):
                ax.set_title(column_titles[c], fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def long_exposure(frames: torch.Tensor) -> torch.Tensor:
    """The brightest value each pixel took over time: frames (T, H, W) -> (H, W)."""
    return torch.as_tensor(frames).amax(dim=0)


def film_strip(rows: Mapping[str, torch.Tensor], steps: Sequence[int], *, title: str,
               exposures: Optional[Mapping[str, torch.Tensor]] = None, spec: PixelWorldSpec = PIXEL_WORLD,
               size: float = 1.25):
    """Futures side by side: ``rows`` {label: frames (T+1, H, W)} shown at ``steps``, then a long exposure.

    The last column is the row's own long exposure, or, where ``exposures`` has the row's label,
    the long exposure of a whole batch of futures (n, T+1, H, W): the fan of paths they take.
    """
    import matplotlib.pyplot as plt

    arrays = {label: _array(frames) for label, frames in rows.items()}
    fans = {label: _array(frames).max(axis=(0, 1)) for label, frames in (exposures or {}).items()}
    cols = len(steps) + 1
    fig, axes = plt.subplots(len(arrays), cols, figsize=(size * cols + 1.4, size * len(arrays) + 0.7), squeeze=False)
    for r, (label, frames) in enumerate(arrays.items()):
        for c, t in enumerate(steps):
            _draw(axes[r, c], frames[t], spec)
            if r == 0:
                axes[r, c].set_title(f"step {t}", fontsize=8)
        _draw(axes[r, -1], fans.get(label, frames.max(axis=0)), spec)
        if label in fans:
            axes[r, -1].set_title(f"{len(exposures[label])} futures, exposed", fontsize=7)
        elif r == 0:
            axes[r, -1].set_title("long exposure", fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def dream_gif(rows: Mapping[str, torch.Tensor], *, scale: int = 4, ms_per_step: int = 300,
              spec: PixelWorldSpec = PIXEL_WORLD, trail: bool = True) -> bytes:
    """An animated GIF of futures playing side by side: ``rows`` {label: frames (T+1, H, W)} -> GIF bytes.

    Each panel is a future, enlarged ``scale`` times (nearest neighbour: the pixels stay pixels),
    with its label above and the step number below; ``trail`` keeps a faint copy of where the car
    has been. All frames of all panels are coloured in one vectorised step; Pillow writes the GIF.
    """
    import matplotlib
    from PIL import Image, ImageDraw

    arrays = [(_array(frames)) for frames in rows.values()]
    labels = list(rows)
    steps = arrays[0].shape[0]
    if any(a.shape[0] != steps for a in arrays):
        raise ValueError("every future must have the same number of steps: " +
                         ", ".join(f"{k}: {a.shape[0]}" for k, a in zip(labels, arrays)))
    stack = np.stack(arrays)                                                      # (panels, T+1, H, W)
    if trail:                                   # where the car has been, at 40% of its brightness above the ground
        shade = ground(spec).numpy()
        past = np.maximum.accumulate(stack, axis=1)
        stack = np.maximum(stack, shade + 0.4 * (past - shade).clip(min=0.0))
    colours = (matplotlib.colormaps[COLOUR_MAP](stack)[..., :3] * 255).astype(np.uint8)
    colours = colours.repeat(scale, axis=2).repeat(scale, axis=3)                 # enlarge
    panels, _, height, width, _ = colours.shape
    fork_col = int(round((spec.fork_threshold + spec.view) / spec.pixel * scale))
    colours[:, :, ::4, fork_col, :] = 255                                        # dashed fork line
    gap, top, bottom = 6, 16, 14
    canvas_w, canvas_h = panels * width + (panels + 1) * gap, height + top + bottom
    images = []
    for t in range(steps):
        canvas = Image.new("RGB", (canvas_w, canvas_h), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for p in range(panels):
            left = gap + p * (width + gap)
            canvas.paste(Image.fromarray(colours[p, t]), (left, top))
            draw.text((left, 2), labels[p], fill=(0, 0, 0))
        draw.text((gap, top + height + 1), f"step {t}", fill=(0, 0, 0))
        images.append(canvas.convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms_per_step, loop=0,
                   optimize=True)
    return buffer.getvalue()


def show_gif(gif: bytes):
    """An object that displays GIF bytes as a playing animation in a notebook (IPython's Image)."""
    from IPython.display import Image

    return Image(data=gif, format="gif")
