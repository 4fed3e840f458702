"""The mistakes of the ``mdn_loss`` exercise: their catalogue, and the diagnosis of a wrong value.

:data:`MISTAKES` names every mistake the checks recognise, each with a gentle nudge, the maths
it breaks and the corrected maths (the hint ladder and the grader's feedback quote them; none
of them is code). The truth is computed in float64 (:func:`nll64`); a wrong value is matched
against what each named mistake would return on the same inputs (:func:`wrong_values`), within
an absolute tolerance in nats (:data:`DIAGNOSIS_TOL`) chosen so that, on every check's inputs,
any two mistakes are further apart than twice that tolerance (:func:`separation`;
``tests/test_checks.py`` proves it on many seeds).
"""
from __future__ import annotations

import math
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

import torch

from .registry import Mistake, separation_margin

__all__ = ["MISTAKES", "DIAGNOSIS_TOL", "PASS_ABS", "PASS_REL", "LOG_DENSITY_MATHS", "LOSS_MATHS", "Args",
           "nll64", "truth", "wrong_values", "naive_underflows", "passes", "diagnose", "separation", "survivors"]

Args = Dict[str, torch.Tensor]   # the inputs of one call: pi, mu, sigma, z_next

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
DIAGNOSIS_TOL = 0.05      # nats: a wrong value within this of a mistake's value is diagnosed as that mistake
SIGMA_EPSILONS = (1e-6, 1e-5)   # what a step adds to sigma "for stability" (smaller ones: see far_from_means)
PASS_ABS, PASS_REL = 1e-4, 1e-5   # a value this close to the float64 truth is right (float32 rounding)


# ---------------------------------------------------------------- the catalogue

LOG_DENSITY_MATHS = "log N(z; mu, sigma) = -((z - mu)/sigma)^2 / 2 - log sigma - log(2 pi)/2"
LOSS_MATHS = "loss = mean over positions of  - sum over d of  log sum over k of  pi_k N(z_d; mu_dk, sigma_dk)"

MISTAKES: Dict[str, Mistake] = {m.id: m for m in (
    Mistake("wrong_sign", "wrong sign",
            "Training minimises the loss. Is a larger value of yours a better or a worse fit?",
            "the loss is the NEGATIVE log-likelihood: minimising it maximises the likelihood",
            "loss = - mean of sum_d log p(z_d)"),
    Mistake("mean_over_dims", "mean over the latent dimensions",
            "Look at how you combine the latent dimensions. They are independent: how do the "
            "probabilities of independent events combine, and so their logs?",
            "p(z) = prod_d p(z_d), so log p(z) = SUM over d of log p(z_d)",
            "sum over the latent dimension d, then average over the batch and time positions"),
    Mistake("sum_over_batch", "sum over the batch",
            "Your value grows with the number of samples. Should the loss of 256 samples be bigger "
            "than the loss of 64?",
            "the loss is an AVERAGE over the batch and time positions",
            "loss = (1/N) sum over positions of -log p(z)"),
    Mistake("missing_log_weights", "missing log-weights",
            "Where do the mixture weights pi enter your computation?",
            "p(z_d) = sum_k pi_k N(z_d; mu_k, sigma_k): each component is weighted by pi_k",
            "log p(z_d) = logsumexp over k of (log pi_k + log N_k)"),
    Mistake("weights_times_log", "weights multiplied in log space",
            "You combine pi with the log-density. What does a product inside the sum become after "
            "taking logs?",
            "log(pi_k N_k) = log pi_k + log N_k, not pi_k * log N_k",
            "log p(z_d) = logsumexp over k of (log pi_k + log N_k)"),
    Mistake("sigma_as_variance", "sigma used as a variance",
            "What does sigma stand for in this model: the spread itself, or its square?",
            "sigma is the standard deviation: N = exp(-((z - mu)/sigma)^2 / 2) / (sigma sqrt(2 pi))",
            LOG_DENSITY_MATHS),
    Mistake("missing_log_2pi", "missing the -log(2 pi)/2 constant",
            "Your value is off by the same amount whatever the inputs. Which term of the Gaussian "
            "log-density does not depend on z, mu or sigma?",
            "the Gaussian density has the normaliser 1/(sigma sqrt(2 pi))",
            LOG_DENSITY_MATHS),
    Mistake("missing_log_sigma", "missing the -log sigma term",
            "A wide Gaussian must have a lower peak. Which term of your log-density makes that so?",
            "the Gaussian density has the normaliser 1/(sigma sqrt(2 pi)), whose log is -log sigma - log(2 pi)/2",
            LOG_DENSITY_MATHS),
    Mistake("missing_half", "missing the 1/2 in the exponent",
            "Check the exponent of your Gaussian against its definition, factor by factor.",
            "N(z; mu, sigma) = exp(-(1/2) ((z - mu)/sigma)^2) / (sigma sqrt(2 pi))",
            LOG_DENSITY_MATHS),
    Mistake("max_over_k", "max instead of logsumexp over the components",
            "Your value keeps only one component per dimension. What does a mixture do with the others?",
            "p(z_d) = SUM over k of pi_k N_k; the largest term alone is only a bound",
            "log p(z_d) = logsumexp over k of (log pi_k + log N_k)"),
    Mistake("logsumexp_over_dims", "logsumexp over the latent axis instead of the components",
            "Which axis holds the K components, and which holds the latent dimensions? "
            "Check the dim= of each reduction.",
            "the mixture sums over the LAST axis (k); the latent axis (d) is then summed in log space",
            "log p(z_d) = logsumexp over k (dim=-1), then sum over d"),
    Mistake("mean_over_k", "mean of the log-densities over the components (no mixture)",
            "Averaging log-densities over the components is not a mixture. What is the probability "
            "of z under a mixture?",
            "p(z_d) = sum_k pi_k N_k, so log p(z_d) = log of a weighted SUM of densities, not an average of logs",
            "log p(z_d) = logsumexp over k of (log pi_k + log N_k)"),
    Mistake("squared_error", "a squared error instead of the likelihood",
            "Your loss measures how far z is from the mixture's average. Does it care how likely z is under "
            "each component, or how wide they are?",
            "the MDN is trained by maximum likelihood: loss = -log p(z), which lesson 1 showed a squared "
            "error (the regression of the mean) cannot replace at a fork",
            LOSS_MATHS),
    Mistake("log_sigma_factor", "log sigma counted the wrong number of times",
            "Your Gaussian's normaliser is off. How many log sigma terms does log(1/(sigma sqrt(2 pi))) hold?",
            "log(1/(sigma sqrt(2 pi))) = -log sigma - log(2 pi)/2: -log sigma once (not -log(sigma)/2 from "
            "log(2 pi sigma)/2, not -log(sigma^2))",
            LOG_DENSITY_MATHS),
    Mistake("precedence", "operator precedence in the exponent",
            "Read the exponent of your Gaussian the way Python does: which operations bind first?",
            "the exponent is -((z - mu) / sigma)^2 / 2: the whole difference divided by sigma, then squared, "
            "then halved",
            "parenthesise (z - mu) before dividing, and (2 * sigma ** 2) if you divide by it"),
    Mistake("constant_doubled", "log(2 pi) without its 1/2",
            "Your value is off by the same amount whatever the inputs. Check the constant term of the "
            "log-density factor by factor.",
            "log(1/sqrt(2 pi)) = -log(2 pi)/2, about -0.92 per dimension, not -log(2 pi)",
            LOG_DENSITY_MATHS),
    Mistake("exponent_sign", "the exponent's sign flipped",
            "Far from the mean, should a Gaussian's density grow or shrink?",
            "N(z; mu, sigma) = exp(-((z - mu)/sigma)^2 / 2) / (sigma sqrt(2 pi)): the exponent is never positive",
            LOG_DENSITY_MATHS),
    Mistake("weights_not_logged", "weights added without their log",
            "In log space each component is weighted by adding something. Is it pi itself?",
            "log(pi_k N_k) = log pi_k + log N_k: the LOG of the weight is added",
            "log p(z_d) = logsumexp over k of (log pi_k + log N_k)"),
    Mistake("weights_not_as_given", "the weights pi not used as they are (uniform, or log_softmax of pi)",
            "Your mixture weighs its components almost equally. Where does pi enter, and as what?",
            "the weights are pi itself: log(pi_k N_k) = log pi_k + log N_k. log_softmax(pi) would treat "
            "probabilities as logits, which flattens them towards 1/K; 1/K ignores them",
            "log pi_k = log of the weights as given (clamped away from 0)"),
    Mistake("missing_log", "the density, not its log",
            "Your loss adds up densities. What does the likelihood of independent dimensions and positions "
            "turn into, and what makes it a sum?",
            "the loss is -LOG p(z): log p(z) = sum over d of log sum over k of pi_k N_k",
            LOSS_MATHS),
    Mistake("sum_and_mean_swapped", "mean over the dimensions, sum over the batch",
            "Which axes does your loss sum, and which does it average? The two have swapped places.",
            "log p(z) sums over the latent dimensions d; the loss then AVERAGES over the positions",
            "sum over d, then mean over every other axis"),
    Mistake("first_axis_only", "averaged over the first axis only",
            "During training the leading axes are (batch, time). Does your loss divide by both, or by the "
            "batch size alone?",
            "the loss averages over EVERY leading position: divide by batch x time, not by the batch size",
            "sum over the latent dimension d, then .mean() over all the remaining axes"),
    Mistake("hardcoded_axes", "axes counted from the front",
            "Your loss is right for (N, D, K) but not for (batch, time, D, K). Which axes did you name, and "
            "do they move when a time axis comes in front?",
            "K is the LAST axis and D the one before it, whatever leads them",
            "reduce over dim=-1 (K) and then dim=-1 again (D), never dim=2 or dim=1"),
    Mistake("sigma_floor", "an epsilon or a clamp 'for stability'",
            "Your loss is right for ordinary widths but not for narrow components. Do you add a small number "
            "to sigma, or clamp something, 'for stability'?",
            "N(z; mu, sigma) must use sigma as given: sigma + 1e-6 is 1 % off when sigma is 1e-4 and moves "
            "the loss of a target 100 sigma away by tenths of a nat; the model's head already keeps sigma "
            "away from 0 (log sigma >= -7)",
            "use sigma and the log-density as they are; if you clamp at all, clamp at torch.finfo(dtype).tiny"),
    Mistake("broadcast_error", "z_next not lined up with the K components",
            "Read the error: two shapes did not broadcast. Which tensor has no component axis?",
            "z_next is (..., D) and mu is (..., D, K): z_next needs a trailing axis of size 1 to meet every component",
            "z_next.unsqueeze(-1) gives (..., D, 1), which broadcasts against (..., D, K)"),
    Mistake("half_precision", "result in half precision",
            "Your result has about three significant digits. Which dtype did it end up in?",
            "a loss is compared to a few parts in a million: float32 or float64, like its inputs",
            "compute in the inputs' dtype; no .half() or bfloat16"),
    Mistake("naive_log_sum_exp", "log(sum(exp(...))) underflows",
            "Far from every mean each density is so small that it rounds to zero, and log(0) is -inf. "
            "Is there a way to add probabilities without leaving log space?",
            "log sum_k exp(a_k) = m + log sum_k exp(a_k - m) with m = max_k a_k: nothing underflows",
            "log p(z_d) = torch.logsumexp(log pi + log N, dim=-1)"),
    Mistake("in_place", "inputs changed in place",
            "Your function changes the tensors it was given. The caller still needs them afterwards.",
            "a loss is a function of (pi, mu, sigma, z): it must not modify them",
            "use out-of-place operations (z - mu, z.unsqueeze(-1)), never -=, +=, *= or methods ending in _"),
    Mistake("returns_number", "returns a Python number",
            "Training calls .backward() on your result. Can a plain float do that?",
            "the loss must stay a torch.Tensor so gradients can flow back to the network",
            "return the scalar tensor itself, without .item() or float(...)"),
    Mistake("detached", "result detached from the inputs",
            "Follow the gradient back from your result: is there a step it cannot pass?",
            "gradients flow only through torch operations on the input tensors",
            "compute every step with torch operations, without .item(), .detach(), .numpy() or torch.tensor(...)"),
    Mistake("numpy_round_trip", "NumPy round trip",
            "Your function leaves torch for NumPy. What happens to the gradients on the way?",
            "gradients flow only through torch operations; a NumPy array carries none",
            "compute every step with torch operations (torch.log, torch.logsumexp, ...)"),
    Mistake("not_scalar", "result not reduced to a scalar",
            "Training needs one number per batch. Which axes have you not reduced yet?",
            LOSS_MATHS, "sum over the latent dimension, then .mean() over every other axis"),
    Mistake("not_float", "integer result",
            "What kind of number is a log-likelihood?",
            "the loss is a real number", "return a floating-point tensor"),
    Mistake("not_tensor", "returns something other than a tensor",
            "What type does training expect the loss to be?",
            "the loss must be a torch.Tensor", "return a 0-dimensional torch.Tensor"),
    Mistake("raises", "the function raises an exception",
            "Read the error message: which line fails, and what shape or type did it get?",
            "mdn_loss takes pi, mu, sigma of shape (..., D, K) and z_next of shape (..., D)",
            "z_next.unsqueeze(-1) lines z up with the K components"),
    Mistake("not_implemented", "not implemented yet",
            "Write your answer in the answer cell, then run it before the checks.",
            LOSS_MATHS, LOG_DENSITY_MATHS),
    Mistake("uses_reference", "calls the package's reference loss",
            "The exercise is to write the computation yourself.",
            LOSS_MATHS, "build the loss from torch operations, not from mdn_course.mdn_loss"),
    Mistake("wrong_gradient", "wrong gradients",
            "Your value is right but its gradients are not: is a step detached, clamped or replaced?",
            "the gradient of the loss is the gradient of the formula, everywhere",
            "compute the loss with differentiable torch operations only"),
    Mistake("too_slow", "too slow to train with",
            "Training calls the loss thousands of times. Is there a Python loop you can replace "
            "with one tensor operation?",
            "every step is an elementwise operation or a reduction over an axis",
            "use broadcasting (z.unsqueeze(-1) - mu) and torch.logsumexp(..., dim=-1), no loops"),
    Mistake("trains_wrong_model", "trains a wrong model",
            "The value checks above say what your loss computes; fix those first.",
            LOSS_MATHS, LOG_DENSITY_MATHS),
)}


# ---------------------------------------------------------------- the diagnosis

def wrong_values(args: Args) -> Dict[str, List[float]]:
    """What each value-level mistake returns on ``args`` (float64, CPU); some mistakes have variants."""
    p, m, s, t = (args[n].detach().cpu().double() for n in ("pi", "mu", "sigma", "z_next"))
    lp = torch.log(p)
    sq = ((t.unsqueeze(-1) - m) / s) ** 2
    log_comp = -0.5 * sq - torch.log(s) - _HALF_LOG_2PI
    per_dim = torch.logsumexp(lp + log_comp, dim=-1)
    mix = lambda lc: float(-torch.logsumexp(lp + lc, dim=-1).sum(-1).mean())  # noqa: E731
    out = {
        "wrong_sign": [float(per_dim.sum(-1).mean())],
        "missing_log_weights": [float(-torch.logsumexp(log_comp, dim=-1).sum(-1).mean())],
        "weights_times_log": [float(-torch.logsumexp(p * log_comp, dim=-1).sum(-1).mean()),
                              float(-(p * log_comp).sum(-1).sum(-1).mean())],
        "sigma_as_variance": [mix(-0.5 * (t.unsqueeze(-1) - m) ** 2 / s - 0.5 * torch.log(s) - _HALF_LOG_2PI)],
        "missing_log_2pi": [mix(-0.5 * sq - torch.log(s))],
        "missing_log_sigma": [mix(-0.5 * sq - _HALF_LOG_2PI)],
        "missing_half": [mix(-sq - torch.log(s) - _HALF_LOG_2PI)],
        "max_over_k": [float(-(lp + log_comp).max(dim=-1).values.sum(-1).mean())],
        "logsumexp_over_dims": [float(-torch.logsumexp(lp + log_comp, dim=-2).sum(-1).mean())],
        "mean_over_k": [float(-log_comp.mean(-1).sum(-1).mean()), float(-(lp + log_comp).mean(-1).sum(-1).mean())],
    }
    diff = t.unsqueeze(-1) - m
    mean = (p * m).sum(-1)
    out.update({
        "squared_error": [float(((t - mean) ** 2).mean()), float(((t - mean) ** 2).sum(-1).mean())],
        "log_sigma_factor": [mix(-0.5 * sq - 0.5 * torch.log(s) - _HALF_LOG_2PI),
                             mix(-0.5 * sq - 2 * torch.log(s) - _HALF_LOG_2PI)],
        "precedence": [mix(-0.5 * (t.unsqueeze(-1) - m / s) ** 2 - torch.log(s) - _HALF_LOG_2PI),
                       mix(-(diff ** 2) / 2 * s ** 2 - torch.log(s) - _HALF_LOG_2PI)],
        "constant_doubled": [mix(-0.5 * sq - torch.log(s) - 2 * _HALF_LOG_2PI)],
        "exponent_sign": [mix(0.5 * sq - torch.log(s) - _HALF_LOG_2PI)],
        "weights_not_logged": [float(-torch.logsumexp(p + log_comp, dim=-1).sum(-1).mean())],
        "weights_not_as_given": [float(-torch.logsumexp(torch.log_softmax(p, -1) + log_comp, dim=-1).sum(-1).mean()),
                                 float(-(torch.logsumexp(log_comp, dim=-1) - math.log(p.shape[-1])).sum(-1).mean())],
        "missing_log": [float(-torch.exp(per_dim).sum(-1).mean()), float(-torch.exp(per_dim.sum(-1)).mean())],
    })
    if t.shape[-1] > 1:               # with one dimension a sum and a mean agree
        out["mean_over_dims"] = [float(-per_dim.mean())]
    if math.prod(t.shape[:-1]) > 1:   # with one position a sum and a mean agree
        out["sum_over_batch"] = [float(-per_dim.sum())]
        if t.shape[-1] > 1:
            out["sum_and_mean_swapped"] = [float(-per_dim.mean(-1).sum())]
    if float(s.max()) < 0.1:          # narrow components: where a "stability" epsilon on sigma shows
        out["sigma_floor"] = [mix(-0.5 * (diff / (s + eps)) ** 2 - torch.log(s + eps) - _HALF_LOG_2PI)
                              for eps in SIGMA_EPSILONS]
    if t.dim() >= 3:                  # (batch, time, D): what counting from the front gets wrong
        out["first_axis_only"] = [float(-per_dim.sum() / t.shape[0])]
        out["hardcoded_axes"] = [float(-torch.logsumexp(lp + log_comp, dim=2).sum(dim=1).mean())]
    return {k: [v for v in vals if math.isfinite(v)] for k, vals in out.items()}


def naive_underflows(args: Args) -> bool:
    """Whether log(sum(pi * exp(log N))) in float32 is infinite on ``args``: where the naive route breaks."""
    p, m, s, t = (args[n].detach().cpu().float() for n in ("pi", "mu", "sigma", "z_next"))
    log_n = -0.5 * ((t.unsqueeze(-1) - m) / s) ** 2 - torch.log(s) - _HALF_LOG_2PI
    return not bool(torch.isfinite(torch.log((p * torch.exp(log_n)).sum(-1))).all())


def nll64(pi, mu, sigma, z) -> torch.Tensor:
    """The correct mean NLL in float64 on the CPU (differentiable): logsumexp over K, sum over D, mean over the rest."""
    p, m, s, t = (x.cpu().double() for x in (pi, mu, sigma, z))
    log_comp = -0.5 * ((t.unsqueeze(-1) - m) / s) ** 2 - torch.log(s) - _HALF_LOG_2PI
    return -torch.logsumexp(torch.log(p) + log_comp, dim=-1).sum(-1).mean()


def truth(args: Args) -> float:
    """The correct loss on ``args``, in float64."""
    return float(nll64(args["pi"], args["mu"], args["sigma"], args["z_next"]))


def passes(got: float, expected: float) -> bool:
    """Whether ``got`` is the float64 truth ``expected`` up to float32 rounding."""
    return math.isfinite(got) and abs(got - expected) <= PASS_ABS + PASS_REL * abs(expected)


def diagnose(got: float, expected: float, args: Args,
             among: Optional[Iterable[str]] = None) -> Tuple[str, Optional[str]]:
    """The course message and mistake id (of ``among``, default all) for a wrong value ``got`` on ``args``."""
    if not math.isfinite(got):
        if naive_underflows(args):
            return (f"mdn_loss returned {got} where {expected:.4f} was expected. Far from every mean each "
                    "component's density underflows to 0 and its log is -inf: stay in log space and combine "
                    "the components with torch.logsumexp.", "naive_log_sum_exp")
        return (f"mdn_loss returned {got} where {expected:.4f} was expected, on inputs where every density is "
                "comfortably above 0. Look for a log of a negative number or of 0, or a division by 0.", None)
    near = set()   # the mistakes whose value is within DIAGNOSIS_TOL of the answer's
    for mistake, values in wrong_values(args).items():
        if among is not None and mistake not in among:
            continue
        if any(abs(got - value) <= DIAGNOSIS_TOL for value in values):
            near.add(mistake)
    # Name a mistake only when it is the only one that close (always so on inputs that pass `separation`).
    best = near.pop() if len(near) == 1 else None
    head = f"mdn_loss returned {got:.4f} where {expected:.4f} was expected."
    if best is None:
        return (head + " It matches none of the usual mistakes. Re-check each step: " + LOG_DENSITY_MATHS
                + "; logsumexp over the K components of log pi + log N; sum over the latent dimensions; "
                "mean over every other axis; negate.", None)
    m = MISTAKES[best]
    return f"{head} Likely mistake: {m.name}. {m.nudge}", best


def separation(args: Args, among: Optional[Iterable[str]] = None) -> float:
    """By how many nats ``args`` keep every diagnosis apart (positive: all told apart; negative: ambiguous).

    On these inputs every mistake's value must either be within half the pass tolerance of the
    truth (the mistake makes no difference here, as missing log-weights with K = 1: such an
    answer passes this request and fails another) or lie more than 2 * DIAGNOSIS_TOL beyond the
    pass tolerance from it; and the values of
    any two different mistakes must be more than 2 * DIAGNOSIS_TOL apart. Then an answer within
    DIAGNOSIS_TOL of a mistake's value fails, and is nearest to that mistake alone. ``among``
    limits this to the mistakes still possible (see :func:`survivors`).
    """
    right = truth(args)
    candidates = {m: v for m, v in wrong_values(args).items() if among is None or m in among}
    margin, _ = separation_margin(candidates, lambda value: abs(value - right), lambda v1, v2: abs(v1 - v2),
                                  PASS_ABS + PASS_REL * abs(right), DIAGNOSIS_TOL)
    return margin


def survivors(args: Args, among: Optional[Iterable[str]] = None) -> FrozenSet[str]:
    """The mistakes (of ``among``, default all) that give the right value on ``args``, within half the
    pass tolerance: the only ones an answer that passed a request on ``args`` can still have."""
    right = truth(args)
    tol = PASS_ABS + PASS_REL * abs(right)
    return frozenset(m for m, values in wrong_values(args).items()
                     if (among is None or m in among) and any(abs(v - right) <= tol / 2 for v in values))

