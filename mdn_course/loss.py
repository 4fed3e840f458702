"""The MDN loss: negative log-likelihood of the next state under the mixture.

``mdn_loss`` is the loss exercise's reference answer; ``mdn_nll_from_logs`` is what training
uses (it starts from ``log_pi`` and ``log_sigma`` and never takes a log of a softmax). Both are
defined once, in :mod:`mdn_course.sandboxed.mdn_rnn` beside the model, because the grader's
sandbox hands the training-step exercise the very same loss; this module is their library name.
"""
from __future__ import annotations

from .sandboxed.mdn_rnn import mdn_loss, mdn_nll_from_logs, validate_mixture_shapes

__all__ = ["mdn_loss", "mdn_nll_from_logs", "validate_mixture_shapes"]
