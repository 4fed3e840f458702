"""The MDN-RNN in three teachable pieces: memory, mixture head, and both together; and its checkpoints.

The classes are defined once, in :mod:`mdn_course.sandboxed.mdn_rnn` (standard library and torch
only), because the grader's sandbox needs the very same model for the training-step exercise;
here they are the library's (``mdn_course.MDNRNN`` is that class). Shapes, and why the head works
in log space, are explained there. This module adds what only the library needs: saving and
loading a trained model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple, Union

import torch

from .sandboxed.mdn_rnn import LSTMState, MDNHead, MDNRNN, MixtureOutput, WorldLSTM, _check_last_dim

__all__ = ["WorldLSTM", "MDNHead", "MDNRNN", "MixtureOutput", "LSTMState", "save_checkpoint", "load_checkpoint",
           "_check_last_dim"]

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
