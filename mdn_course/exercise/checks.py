"""Diagnostic checks for the exercise: implement ``mdn_loss(pi, mu, sigma, z_next)``.

The checks never call the student's function themselves. Each check is a *judge*: a
generator that yields :class:`~mdn_course.exercise.oracle.Request` objects (inputs to
call ``mdn_loss`` on), receives :class:`~mdn_course.exercise.oracle.Answer` objects (plain
facts about what the call did) and either returns a one-line detail (pass) or raises
:class:`CheckFailed` naming the most likely mistake from :data:`MISTAKES`.
:func:`drive` plays a judge against any *oracle* (a function ``Request -> Answer``):

* in the notebook, :func:`local_oracle` calls the student's function in this process
  (inputs cloned, the package's reference loss booby-trapped while it runs);
* in the instructor's grader, the oracle is a pipe to a sandbox, so nothing that
  decides a grade runs where student code runs.

The truth is computed here in float64. A wrong value is matched against what each
named mistake would return on the same inputs, within an absolute tolerance in nats
(:data:`DIAGNOSIS_TOL`) chosen so that, on every check's inputs, any two mistakes
are further apart than twice that tolerance (``tests/test_checks.py`` proves it on
many seeds).
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Callable, Dict, FrozenSet, Generator, Iterable, List, Optional, Sequence, Tuple

import torch

from .oracle import Answer, Request, evaluate

__all__ = ["CheckFailed", "Check", "CheckResult", "Mistake", "MISTAKES", "CHECKS", "Judge", "Oracle", "drive",
           "run_check", "run_all_checks", "local_oracle", "reference_guard", "check_cell_metadata",
           "DIAGNOSIS_TOL", "separation", "survivors"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
Judge = Callable[[torch.Generator], Generator[Request, Answer, str]]
Oracle = Callable[[Request], Answer]
Args = Dict[str, torch.Tensor]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
DIAGNOSIS_TOL = 0.05      # nats: a wrong value within this of a mistake's value is diagnosed as that mistake
PASS_ABS, PASS_REL = 1e-4, 1e-5   # a value this close to the float64 truth is right (float32 rounding)


# ---------------------------------------------------------------- mistakes

@dataclass(frozen=True)
class Mistake:
    """A named mistake: a short title, a gentle first hint, the maths it breaks, and the corrected maths."""
    id: str
    name: str
    nudge: str
    maths: str
    fix: str


_LOGN = "log N(z; mu, sigma) = -((z - mu)/sigma)^2 / 2 - log sigma - log(2 pi)/2"
_LOSS = "loss = mean over positions of  - sum over d of  log sum over k of  pi_k N(z_d; mu_dk, sigma_dk)"

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
            _LOGN),
    Mistake("missing_log_2pi", "missing the -log(2 pi)/2 constant",
            "Your value is off by the same amount whatever the inputs. Which term of the Gaussian "
            "log-density does not depend on z, mu or sigma?",
            "the Gaussian density has the normaliser 1/(sigma sqrt(2 pi))",
            _LOGN),
    Mistake("missing_log_sigma", "missing the -log sigma term",
            "A wide Gaussian must have a lower peak. Which term of your log-density makes that so?",
            "the Gaussian density has the normaliser 1/(sigma sqrt(2 pi)), whose log is -log sigma - log(2 pi)/2",
            _LOGN),
    Mistake("missing_half", "missing the 1/2 in the exponent",
            "Check the exponent of your Gaussian against its definition, factor by factor.",
            "N(z; mu, sigma) = exp(-(1/2) ((z - mu)/sigma)^2) / (sigma sqrt(2 pi))",
            _LOGN),
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
            _LOSS, "sum over the latent dimension, then .mean() over every other axis"),
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
            _LOSS, _LOGN),
    Mistake("uses_reference", "calls the package's reference loss",
            "The exercise is to write the computation yourself.",
            _LOSS, "build the loss from torch operations, not from mdn_course.mdn_loss"),
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
            _LOSS, _LOGN),
)}


def _wrong_values(pi, mu, sigma, z) -> Dict[str, List[float]]:
    """What each value-level mistake returns on these inputs (float64, CPU); some mistakes have variants."""
    p, m, s, t = (x.detach().cpu().double() for x in (pi, mu, sigma, z))
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
    if t.shape[-1] > 1:               # with one dimension a sum and a mean agree
        out["mean_over_dims"] = [float(-per_dim.mean())]
    if math.prod(t.shape[:-1]) > 1:   # with one position a sum and a mean agree
        out["sum_over_batch"] = [float(-per_dim.sum())]
    return out


def _naive_underflows(args: Args) -> bool:
    """Whether log(sum(pi * exp(log N))) in float32 is infinite on ``args``: where the naive route breaks."""
    p, m, s, t = (args[n].detach().cpu().float() for n in ("pi", "mu", "sigma", "z_next"))
    log_n = -0.5 * ((t.unsqueeze(-1) - m) / s) ** 2 - torch.log(s) - _HALF_LOG_2PI
    return not bool(torch.isfinite(torch.log((p * torch.exp(log_n)).sum(-1))).all())


def _nll64(pi, mu, sigma, z) -> torch.Tensor:
    """The correct mean NLL in float64 on the CPU (differentiable): logsumexp over K, sum over D, mean over the rest."""
    p, m, s, t = (x.cpu().double() for x in (pi, mu, sigma, z))
    log_comp = -0.5 * ((t.unsqueeze(-1) - m) / s) ** 2 - torch.log(s) - _HALF_LOG_2PI
    return -torch.logsumexp(torch.log(p) + log_comp, dim=-1).sum(-1).mean()


# ---------------------------------------------------------------- failures and results

class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what is wrong, in the course's words.

    ``check`` names the check, ``mistake`` is a key of :data:`MISTAKES` (or None when the
    answer matches no known mistake). In a notebook, IPython shows only the message (see
    :meth:`_render_traceback_`), never the checker's frames.
    """

    def __init__(self, message: str, check: Optional[str] = None, mistake: Optional[str] = None):
        super().__init__(message)
        self.check = check
        self.mistake = mistake

    def _render_traceback_(self) -> List[str]:
        """IPython calls this to render the exception: the course message alone, no package frames."""
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {self}"]


class ReferenceUsed(RuntimeError):
    """Raised inside a student's function when it calls the package's reference loss."""


@dataclass(frozen=True)
class Check:
    """One check: its name, its points, what it tests (one line), its judge, and the paragraph
    the exercise notebook shows above its cell (``note``)."""
    name: str
    points: int
    description: str
    judge: Judge
    note: str = ""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check. ``detail`` is the pass line; ``message`` the course message of a failure."""
    name: str
    points: int
    passed: bool
    detail: str
    message: Optional[str]
    mistake: Optional[str]


def _fail(message: str, mistake: Optional[str] = None) -> CheckFailed:
    return CheckFailed(message, mistake=mistake)


# ---------------------------------------------------------------- reading an answer

def _error_failure(answer: Answer) -> CheckFailed:
    error = answer.error or ""
    if answer.kind == "not_implemented":
        return _fail(f"mdn_loss is not implemented yet ({error.split(': ', 1)[-1]}). "
                     "Write your answer in the answer cell above and run it.", "not_implemented")
    if error.startswith("ReferenceUsed"):
        return _fail("your mdn_loss calls the package's reference implementation (mdn_course.mdn_loss); "
                     "the exercise is to write the computation yourself, so this scores zero", "uses_reference")
    if "in-place operation" in error:
        return _fail(f"mdn_loss raised {error}. Your function changes one of its inputs in place (-=, +=, *= or "
                     "a method ending in _): the caller still needs them, so compute new tensors instead.",
                     "in_place")
    if "numpy" in error.lower():
        return _fail(f"mdn_loss raised {error}. Your function goes through NumPy, which carries no gradients: "
                     "keep every step a torch operation.", "numpy_round_trip")
    return _fail(f"mdn_loss raised {error}", "raises")


def _tensor(answer: Answer, need_grad: bool = False) -> Answer:
    """Fail unless the call returned a 0-dimensional float tensor and left its inputs alone."""
    if answer.mutated:
        names = ", ".join(answer.mutated)
        return_hint = "" if answer.kind != "raised" else f" (and then raised {answer.error})"
        raise _fail(f"your mdn_loss changed its input {names} in place{return_hint}. The caller still needs "
                    "its tensors afterwards (the network's outputs, the data): use out-of-place operations "
                    "such as z_next.unsqueeze(-1) and z - mu, never unsqueeze_, -=, += or *=.", "in_place")
    if answer.kind in ("raised", "not_implemented"):
        raise _error_failure(answer)
    if answer.kind == "other":
        if answer.type_name in ("float", "int"):
            raise _fail(f"mdn_loss must return a torch.Tensor, got {answer.type_name} (did you call .item() or "
                        "float(...)? keep it a tensor so gradients can flow)", "returns_number")
        if answer.type_name == "ndarray":
            raise _fail("mdn_loss must return a torch.Tensor, got a NumPy array: keep every step a torch "
                        "operation so gradients can flow", "numpy_round_trip")
        raise _fail(f"mdn_loss must return a torch.Tensor, got {answer.type_name}", "not_tensor")
    if answer.shape != []:
        raise _fail(f"mdn_loss must return a scalar (0-dimensional) tensor, got shape {tuple(answer.shape or ())}: "
                    "sum over the latent dimensions, then average over every sample with .mean()", "not_scalar")
    if answer.value is None:
        raise _fail(f"mdn_loss must return a floating-point tensor, got {answer.dtype}", "not_float")
    if need_grad and not answer.requires_grad:
        raise _fail("the result is detached from the inputs (no gradient can flow back to mu and sigma): "
                    "use torch operations only, without .item(), .numpy(), .detach() or torch.tensor(...)",
                    "detached")
    return answer


def _passes(got: float, expected: float) -> bool:
    return math.isfinite(got) and abs(got - expected) <= PASS_ABS + PASS_REL * abs(expected)


def _diagnose(got: float, expected: float, args: Args,
              among: Optional[Iterable[str]] = None) -> Tuple[str, Optional[str]]:
    """The course message and mistake id (of ``among``, default all) for a wrong value ``got`` on ``args``."""
    if not math.isfinite(got):
        if _naive_underflows(args):
            return (f"mdn_loss returned {got} where {expected:.4f} was expected. Far from every mean each "
                    "component's density underflows to 0 and its log is -inf: stay in log space and combine "
                    "the components with torch.logsumexp.", "naive_log_sum_exp")
        return (f"mdn_loss returned {got} where {expected:.4f} was expected, on inputs where every density is "
                "comfortably above 0. Look for a log of a negative number or of 0, or a division by 0.", None)
    near = set()   # the mistakes whose value is within DIAGNOSIS_TOL of the answer's
    for mistake, values in _wrong_values(**_named(args)).items():
        if among is not None and mistake not in among:
            continue
        if any(abs(got - value) <= DIAGNOSIS_TOL for value in values):
            near.add(mistake)
    # Name a mistake only when it is the only one that close (always so on inputs that pass `separation`).
    best = near.pop() if len(near) == 1 else None
    head = f"mdn_loss returned {got:.4f} where {expected:.4f} was expected."
    if best is None:
        return (head + " It matches none of the usual mistakes. Re-check each step: " + _LOGN
                + "; logsumexp over the K components of log pi + log N; sum over the latent dimensions; "
                "mean over every other axis; negate.", None)
    m = MISTAKES[best]
    return f"{head} Likely mistake: {m.name}. {m.nudge}", best


def _named(args: Args) -> Args:
    return {"pi": args["pi"], "mu": args["mu"], "sigma": args["sigma"], "z": args["z_next"]}


def _expect_value(answer: Answer, args: Args, preface: str = "", among: Optional[Iterable[str]] = None) -> float:
    """Fail with a diagnosis (among the mistakes ``among``) unless the answer's value is the float64 NLL of ``args``."""
    got = _tensor(answer).value
    expected = float(_nll64(**_named(args)))
    if not _passes(got, expected):
        message, mistake = _diagnose(got, expected, args, among)
        raise _fail(preface + message, mistake)
    return got


# ---------------------------------------------------------------- inputs

def _fresh_generator() -> torch.Generator:
    return torch.Generator().manual_seed(secrets.randbits(62))


def _device() -> torch.device:
    from ..device import get_device
    return get_device()


def _mixture_args(g: torch.Generator, lead: Sequence[int] = (64,), d: int = 3, k: int = 4,
                  dtype: torch.dtype = torch.float32) -> Args:
    """Random mixtures and targets, kept where every mistake is told apart from every other.

    Means and targets in [-1.5, 1.5] and sigma in [0.3, 1.2]: every target is within 10 sigma of
    every mean, where even a naive log(sum(exp)) stays finite in float32 (underflow is tested on
    purpose, by ``far_from_means`` alone), and log sigma averages well below 0, so a missing
    -log sigma moves the loss by about a nat per dimension.
    """
    pi = torch.softmax(torch.randn(*lead, d, k, generator=g), dim=-1)
    mu = 3.0 * torch.rand(*lead, d, k, generator=g) - 1.5
    sigma = 0.3 + 0.9 * torch.rand(*lead, d, k, generator=g)
    z = 3.0 * torch.rand(*lead, d, generator=g) - 1.5
    return _on_device({"pi": pi, "mu": mu, "sigma": sigma, "z_next": z}, dtype)


def _on_device(args: Args, dtype: torch.dtype = torch.float32) -> Args:
    device = _device()
    if device.type == "mps" and dtype == torch.float64:
        device = torch.device("cpu")  # MPS has no float64
    return {n: t.to(device=device, dtype=dtype) for n, t in args.items()}


def _far_args(g: torch.Generator) -> Args:
    """Targets 100 standard deviations above every mean, where exp() of every log-density underflows.

    The component nearest the target gets a small weight, so a missing log-weight moves the loss
    by several nats, well clear of the constant log(2 pi)/2 per dimension.
    """
    lead, d, k = (64,), 2, 3
    mu = 3.0 * torch.rand(*lead, d, k, generator=g) - 1.5
    logits = torch.randn(*lead, d, k, generator=g)
    top = mu.argmax(dim=-1, keepdim=True)
    logits = logits.scatter(-1, top, -3.0)   # the nearest component has weight about 0.02-0.1
    pi = torch.softmax(logits, dim=-1)
    sigma = torch.full((*lead, d, k), 0.05)
    z = mu.max(dim=-1).values + 5.0
    return _on_device({"pi": pi, "mu": mu, "sigma": sigma, "z_next": z})


def _extreme_sigma_args(g: torch.Generator, scale: float) -> Args:
    """All components within a few ``scale`` of each other and of the target, with sigma = ``scale``."""
    lead, d, k = (64,), 2, 3
    pi = torch.softmax(torch.randn(*lead, d, k, generator=g), dim=-1)
    centre = 3.0 * torch.rand(*lead, d, 1, generator=g) - 1.5
    mu = centre + scale * (4.0 * torch.rand(*lead, d, k, generator=g) - 2.0)
    sigma = scale * (0.5 + torch.rand(*lead, d, k, generator=g))
    z = centre[..., 0] + scale * (2.0 * torch.rand(*lead, d, generator=g) - 1.0)
    return _on_device({"pi": pi, "mu": mu, "sigma": sigma, "z_next": z}, torch.float64)


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
    truth = float(_nll64(**_named(args)))
    tol = PASS_ABS + PASS_REL * abs(truth)
    margin = math.inf
    distinct: List[Tuple[str, float]] = []
    for mistake, values in _wrong_values(**_named(args)).items():
        if among is not None and mistake not in among:
            continue
        for value in values:
            gap = abs(value - truth)
            if gap <= tol / 2:
                continue
            margin = min(margin, gap - tol - 2 * DIAGNOSIS_TOL)
            distinct.append((mistake, value))
    for i, (m1, v1) in enumerate(distinct):
        for m2, v2 in distinct[i + 1:]:
            if m1 != m2:
                margin = min(margin, abs(v1 - v2) - 2 * DIAGNOSIS_TOL)
    return margin


def survivors(args: Args, among: Optional[Iterable[str]] = None) -> FrozenSet[str]:
    """The mistakes (of ``among``, default all) that give the right value on ``args``, within half the
    pass tolerance: the only ones an answer that passed a request on ``args`` can still have."""
    truth = float(_nll64(**_named(args)))
    tol = PASS_ABS + PASS_REL * abs(truth)
    return frozenset(m for m, values in _wrong_values(**_named(args)).items()
                     if (among is None or m in among) and any(abs(v - truth) <= tol / 2 for v in values))


def _pick(make: Callable[[], Args], among: Optional[Iterable[str]] = None, tries: int = 50) -> Args:
    """Draw inputs with ``make`` until every diagnosis is told apart on them (see :func:`separation`)."""
    best, best_margin = None, -math.inf
    for _ in range(tries):
        args = make()
        margin = separation(args, among)
        if margin > 0:
            return args
        if margin > best_margin:
            best, best_margin = args, margin
    return best


# ---------------------------------------------------------------- the judges

def _judge_returns_scalar(rng: torch.Generator) -> Generator[Request, Answer, str]:
    answer = yield Request(_mixture_args(rng), grad_of=("mu",))  # any inputs: no value is judged
    _tensor(answer, need_grad=True)
    if answer.grad_error or answer.grads.get("mu") is None:
        raise _fail("no gradient reaches mu from your result: keep every step a torch operation on the inputs",
                    "detached")
    return "returns a scalar tensor that gradients can flow through"


def _judge_single_gaussian(rng: torch.Generator) -> Generator[Request, Answer, str]:
    args = _pick(lambda: _mixture_args(rng, lead=(128,), d=2, k=1))
    answer = yield Request(args)
    _expect_value(answer, args, preface="With one component the loss must equal the Gaussian NLL "
                                        "-Normal(mu, sigma).log_prob(z) summed over dimensions and averaged. ")
    return "K = 1 matches the Gaussian negative log-likelihood"


def _judge_mixture(rng: torch.Generator) -> Generator[Request, Answer, str]:
    args = _pick(lambda: _mixture_args(rng, lead=(256,), d=3, k=5))
    _expect_value((yield Request(args)), args)
    return "K = 5 mixtures match a float64 computation"


def _judge_far_from_means(rng: torch.Generator) -> Generator[Request, Answer, str]:
    among: Optional[FrozenSet[str]] = None   # the mistakes an answer that passed every request so far may have
    for make in (lambda: _far_args(rng), lambda: _extreme_sigma_args(rng, 1e-4),
                 lambda: _extreme_sigma_args(rng, 1e3)):
        args = _pick(make, among)
        _expect_value((yield Request(args)), args, among=among)
        among = survivors(args, among)
    return "stays finite and exact 100 sigma from every mean and for sigma from 1e-4 to 1e3 (logsumexp)"


def _judge_leading_dims(rng: torch.Generator) -> Generator[Request, Answer, str]:
    args = _pick(lambda: _mixture_args(rng, lead=(4, 7), d=2, k=3))
    _expect_value((yield Request(args)), args)
    among = survivors(args)
    one = _pick(lambda: _mixture_args(rng, lead=(1,), d=2, k=3), among)
    _expect_value((yield Request(one)), one, among=among)
    return "works with (batch, time) leading dimensions and averages over all of them"


def _judge_gradients(rng: torch.Generator) -> Generator[Request, Answer, str]:
    args = _pick(lambda: _mixture_args(rng, lead=(32,), d=2, k=3, dtype=torch.float64))
    answer = yield Request(args, grad_of=("mu", "sigma"))
    _tensor(answer, need_grad=True)
    if answer.grad_error:
        raise _fail(f"calling .backward() on your result raised {answer.grad_error}", "wrong_gradient")
    truth = {n: args[n].detach().cpu().double().requires_grad_(n in ("mu", "sigma")) for n in args}
    _nll64(**_named(truth)).backward()
    for name in ("mu", "sigma"):
        grad = answer.grads.get(name)
        if grad is None:
            raise _fail(f"no gradient reaches {name} from your result: keep every step a torch operation",
                        "detached")
        if tuple(grad.shape) != tuple(truth[name].shape) or not torch.isfinite(grad).all():
            raise _fail(f"the gradient with respect to {name} is not finite", "wrong_gradient")
        if not torch.allclose(grad.double(), truth[name].grad, rtol=1e-4, atol=1e-6):
            got, expected = answer.value, float(_nll64(**_named(args)))
            if got is not None and not _passes(got, expected):
                message, mistake = _diagnose(got, expected, args)
                raise _fail(f"the gradient with respect to {name} is wrong because the value is: {message}", mistake)
            raise _fail(f"the value is right but the gradient with respect to {name} is wrong: "
                        "is a step detached, clamped or replaced by a constant?", "wrong_gradient")
    return "gradients with respect to mu and sigma are finite and correct"


# ---- learns: train the lesson's model with the answer's gradients

LEARNS_STEPS = 200
LEARNS_SEED = 7                # data, model and batch order
LEARNS_NLL_MARGIN = 0.3        # nats/step above the Bayes floor a correct loss stays within on held-out data
LEARNS_REPORT_TOL = 0.05       # nats: how far the loss reported at any step may be from the batch's true NLL
LEARNS_BRANCH_MIN = 0.2       # probability the model must put on each side of the fork (a right model: 0.5)
LEARNS_GAP_MAX = 0.15         # probability it may put between the branches (a right model: 0; one Gaussian: 0.29)
LEARNS_SLOW_CALL_S = 0.02      # a loss slower than this per call makes lesson 4's training crawl: warn
LEARNS_MAX_S = 60.0            # stop training (and fail) after this much time inside the answer


def _fork_shape(model, device: torch.device) -> Tuple[float, float]:
    """Predicted probability of dimension 1 on each side of the fork, and in the gap between the branches.

    At a state right of the fork (z = [1, 0], action 0) the world moves dimension 1 by +0.4 or
    -0.4 with noise 0.05, so nothing lands within 0.15 of 0. Returns (the smaller of the masses
    above +0.15 and below -0.15, the mass between -0.15 and +0.15). A right model has about 0.5
    and 0; one Gaussian fitted to both branches (sigma about 0.4) has about 0.35 and 0.29.
    """
    z = torch.tensor([[[1.0, 0.0]]], device=device)
    a = torch.zeros(1, 1, 2, device=device)
    with torch.no_grad():
        out = model(z, a)
    pi, mu, sigma = (t[0, 0, 1].double().cpu() for t in (out.pi, out.mu, out.sigma))
    cdf = lambda x: torch.distributions.Normal(mu, sigma).cdf(torch.tensor(x, dtype=torch.float64))  # noqa: E731
    below, above = float((pi * cdf(-0.15)).sum()), float((pi * (1 - cdf(0.15))).sum())
    return min(below, above), 1.0 - below - above


def _judge_learns(rng: torch.Generator) -> Generator[Request, Answer, str]:
    """Train the lesson's MDN-RNN for about a second with the answer's gradients; judge what it reports and trains.

    Each step the judge builds the model's mixture, asks the oracle for the loss value and its
    gradients with respect to pi, mu and sigma, and backpropagates those gradients into the
    network itself (the answer never sees the model). It passes only if (1) at every step the
    value the answer reports is within LEARNS_REPORT_TOL nats of the float64 NLL of that batch
    (the training curve a student would plot); (2) the held-out NLL, measured here, ends within
    LEARNS_NLL_MARGIN of the Bayes floor; (3) the predicted distribution at the fork has two
    branches and nothing between them (:func:`_fork_shape`). (2) and (3) catch answers whose
    value is right but whose gradients are not (a detached weight or mean).

    Why a correctly computed loss multiplied by a constant may pass: it trains the very same
    model, since Adam's steps do not depend on the gradients' scale (and a constant added has no
    gradient at all), so the trained model cannot tell it from the right loss; only its reported
    values can, by criterion (1). A factor close enough to 1 (within LEARNS_REPORT_TOL of the NLL,
    about 2% at the NLLs seen here) passes; the exact value checks catch it. Scalings that are
    real mistakes (a mean over the D = 2 dimensions halves the loss, a sum over the batch
    multiplies it by 64, a missing log(2 pi)/2 shifts it by 1.84 nats) move it far more and fail.
    Runs on one CPU thread (the lesson model is tiny; threads only wait for each other).
    """
    from ..data import bayes_optimal_nll, generate_synthetic_data
    from ..model import MDNRNN
    from ..training import cpu_threads, evaluate_nll

    device = _device()
    # Fixed seeds (``rng`` is not used): the answer only ever sees the model's own predictions, so there
    # is nothing to tune it to, and the same run prints the same numbers everywhere (the notebook's output).
    seed = LEARNS_SEED
    z, a = generate_synthetic_data(400, seq_len=12, seed=seed)
    z_test, a_test = generate_synthetic_data(400, seq_len=12, seed=seed + 1)
    floor = bayes_optimal_nll(z_test, a_test)
    z, a, z_test, a_test = (t.to(device) for t in (z, a, z_test, a_test))
    seconds = 0.0
    with cpu_threads(1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MDNRNN(hidden_dim=32, n_components=3).to(device)
        before = evaluate_nll(model, z_test, a_test)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
        order = torch.Generator().manual_seed(seed)
        for step in range(LEARNS_STEPS):
            idx = torch.randint(0, z.shape[0], (64,), generator=order).to(device)
            out = model(z[idx, :-1], a[idx])
            args = {"pi": out.pi, "mu": out.mu, "sigma": out.sigma, "z_next": z[idx, 1:]}
            answer = yield Request({n: t.detach() for n, t in args.items()}, grad_of=("pi", "mu", "sigma"))
            seconds += answer.seconds
            _tensor(answer, need_grad=True)
            batch = {n: t.detach() for n, t in args.items()}
            truth = float(_nll64(**_named(batch)))
            if not (math.isfinite(answer.value) and abs(answer.value - truth) <= LEARNS_REPORT_TOL):
                message, mistake = _diagnose(answer.value, truth, batch)
                raise _fail(f"at training step {step + 1} of {LEARNS_STEPS}, on a batch of the model's own "
                            f"predictions: {message} A training curve drawn with your loss would mislead.", mistake)
            if answer.grad_error:
                raise _fail(f"calling .backward() on your loss raised {answer.grad_error}", "wrong_gradient")
            outputs, grads = [], []
            for name in ("pi", "mu", "sigma"):
                grad = answer.grads.get(name)
                if grad is None:
                    continue
                if tuple(grad.shape) != tuple(args[name].shape):
                    raise _fail(f"the gradient with respect to {name} has the wrong shape", "wrong_gradient")
                if not torch.isfinite(grad).all():
                    raise _fail(f"step {step + 1}: the gradient of your loss with respect to {name} is not finite "
                                "(a log of a zero, or exp() overflowing?)", "naive_log_sum_exp")
                outputs.append(args[name])
                grads.append(grad.to(device=device, dtype=args[name].dtype))
            optimizer.zero_grad(set_to_none=True)
            if outputs:
                torch.autograd.backward(outputs, grads)
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
                optimizer.step()
            if seconds > LEARNS_MAX_S:
                raise _fail(f"training stopped after {step + 1} steps: your loss took {seconds:.0f} s in all, "
                            f"{1000 * seconds / (step + 1):.0f} ms a call", "too_slow")
        after = evaluate_nll(model, z_test, a_test)
        branch, middle = _fork_shape(model, device)
    story = (f"training with your loss moved the held-out NLL from {before:.2f} to {after:.2f} nats/step "
             f"(floor {floor:.2f})")
    if not (math.isfinite(after) and after <= floor + LEARNS_NLL_MARGIN):
        raise _fail(f"{story}; a correct loss gets within {LEARNS_NLL_MARGIN} nats of the floor in "
                    f"{LEARNS_STEPS} steps", "trains_wrong_model")
    if branch < LEARNS_BRANCH_MIN or middle > LEARNS_GAP_MAX:
        raise _fail(f"{story}, but at the fork (z = [1, 0]) the model puts {branch:.2f} of its probability on the "
                    f"less likely side and {middle:.2f} between the branches, where the world never goes "
                    "(a right model: about 0.5 and 0). Your loss does not let the components form a mixture.",
                    "trains_wrong_model")
    detail = (f"{LEARNS_STEPS} training steps with your loss: held-out NLL {before:.2f} -> {after:.2f} nats/step "
              f"(floor {floor:.2f}); two branches at the fork")
    per_call = seconds / LEARNS_STEPS
    if per_call > LEARNS_SLOW_CALL_S:
        detail += (f". Warning: your loss takes {1000 * per_call:.0f} ms a call; lesson 4's training calls it "
                   "thousands of times, so look for a Python loop to replace with tensor operations")
    return detail


_NOTES = {
    "returns_scalar": (
        "A loss you can train with is one number that remembers how it was computed. This check asks for a "
        "0-dimensional tensor connected to `mu`: `.item()`, `.numpy()` or a new tensor built from the result "
        "would cut the gradient off. Your function always gets copies of its inputs, and changing them in "
        "place (`mu -= ...`, `z_next.unsqueeze_(-1)`) fails every check: the caller still needs them."),
    "single_gaussian": (
        "With one component (K = 1) a mixture is just a Gaussian, so your loss must agree with "
        "`torch.distributions.Normal(mu, sigma).log_prob`, negated, summed over dimensions and averaged. "
        "If this fails, look at the Gaussian log-density first: the `-log(sigma)` term, the factor 1/2, the "
        "constant, and whether `sigma` was treated as a variance. (Mistakes in how components are mixed "
        "cannot show with one component; the next check looks for those.)"),
    "mixture": (
        "Random mixtures with K = 5 components and 3 latent dimensions, compared with the same computation "
        "in float64. When your number is wrong, the message names the mistake whose value it matches within "
        f"{DIAGNOSIS_TOL} nats: the inputs are chosen so that no two usual mistakes give values that close."),
    "far_from_means": (
        "Targets 100 standard deviations from every mean, then standard deviations of 1e-4 and 1e3. Far "
        "from every mean each component's density is smaller than the smallest float32, so "
        "`log(sum(exp(...)))` returns `-inf` and the loss `inf`; `torch.logsumexp` subtracts the largest "
        "term before exponentiating and stays exact. Trained models meet such targets early on."),
    "leading_dims": (
        "During training `pi` has shape (batch, time, D, K), not just (N, D, K). Reduce over the last axis "
        "for K and the next one for D, and average over everything in front, whatever its shape: `dim=-1` "
        "works where `dim=2` does not."),
    "gradients": (
        "Training follows the gradient, so it has to be right as well as finite. Your loss is "
        "differentiated with respect to `mu` and `sigma` in float64 and compared with the exact gradient."),
    "learns": (
        f"The end-to-end test: a small MDN-RNN is trained for {LEARNS_STEPS} steps on the course's world, "
        "on one CPU thread, following the gradients of **your** loss. It passes when the loss you report at "
        f"every step is within {LEARNS_REPORT_TOL} nats of the true NLL of that batch (the training curve "
        f"you would plot), the held-out NLL ends within {LEARNS_NLL_MARGIN} nats of the best possible "
        "value, and the model predicts two branches at the fork with nothing between them. A loss "
        "multiplied by a constant trains the very same model (Adam's steps do not depend on the "
        "gradients' scale), so only its reported numbers can give it away: a constant close enough to 1 "
        "passes here and is caught by the exact value checks above. It takes a second or two; a loss "
        "slower than 20 ms a call gets a warning."),
}

CHECKS: Dict[str, Check] = {c.name: c for c in (
    Check("returns_scalar", 1, "returns a differentiable scalar tensor",
          _judge_returns_scalar, _NOTES["returns_scalar"]),
    Check("single_gaussian", 2, "K = 1 equals the Gaussian negative log-likelihood",
          _judge_single_gaussian, _NOTES["single_gaussian"]),
    Check("mixture", 2, "mixtures match a float64 reference on random inputs",
          _judge_mixture, _NOTES["mixture"]),
    Check("far_from_means", 2, "finite and exact far from the means and at extreme sigmas",
          _judge_far_from_means, _NOTES["far_from_means"]),
    Check("leading_dims", 1, "any leading (batch, time) dimensions, averaged",
          _judge_leading_dims, _NOTES["leading_dims"]),
    Check("gradients", 1, "correct, finite gradients",
          _judge_gradients, _NOTES["gradients"]),
    Check("learns", 1, "a short training run with your loss learns the world",
          _judge_learns, _NOTES["learns"]),
)}


# ---------------------------------------------------------------- driving a judge

def drive(name: str, oracle: Oracle, rng: Optional[torch.Generator] = None) -> CheckResult:
    """Play check ``name``'s judge against ``oracle``; never raises for a student's mistake.

    ``rng`` seeds the check's inputs (a fresh random one by default, so answers cannot be
    tuned to fixed inputs). A judge that cannot use an answer at all reports it as a failure
    in the course's words rather than a traceback. Exceptions raised by ``oracle`` itself
    (the grader's sandbox died, a malformed message) propagate: they are not the student's.
    """
    if name not in CHECKS:
        raise KeyError(f"unknown check {name!r}; the checks are {', '.join(CHECKS)}")
    check = CHECKS[name]
    judge = check.judge(rng if rng is not None else _fresh_generator())
    try:
        answer: Optional[Answer] = None
        while True:
            try:
                request = next(judge) if answer is None else judge.send(answer)
            except StopIteration as stop:
                return CheckResult(name, check.points, True, str(stop.value), None, None)
            except CheckFailed as exc:
                return CheckResult(name, check.points, False, check.description, str(exc), exc.mistake)
            except (ArithmeticError, ValueError, TypeError, RuntimeError, IndexError, KeyError) as exc:
                return CheckResult(name, check.points, False, check.description,
                                   f"the check could not use your answer ({type(exc).__name__}: {exc}); "
                                   "make sure mdn_loss returns a scalar tensor computed from its inputs", None)
            answer = oracle(request)   # the oracle's own failures (a sandbox gone) are the caller's to handle
    finally:
        judge.close()


# ---------------------------------------------------------------- the local oracle (notebook)

_GUARD_STATE = {"calls": 0}


def _tripwire(*args, **kwargs):  # its __code__ replaces the reference functions' code while a check runs
    import mdn_course.exercise.checks as _c

    _c._GUARD_STATE["calls"] += 1
    raise _c.ReferenceUsed("the package's reference mdn_loss was called")


class reference_guard:
    """Context manager: while active, any call of the package's reference loss raises ``ReferenceUsed``.

    It swaps the *code* of the reference functions, so the reference is caught
    however it was reached (``from mdn_course import mdn_loss``, ``importlib``,
    ``getattr`` on the module, a copy of the function object made earlier).
    """

    def __enter__(self):
        from .. import loss as reference

        self._functions = [reference.mdn_loss, reference.mdn_nll_from_logs]
        self._codes = [f.__code__ for f in self._functions]
        self.calls_before = _GUARD_STATE["calls"]
        for f in self._functions:
            f.__code__ = _tripwire.__code__
        return self

    @property
    def tripped(self) -> bool:
        return _GUARD_STATE["calls"] > self.calls_before

    def __exit__(self, *exc):
        for f, code in zip(self._functions, self._codes):
            f.__code__ = code
        return False


def local_oracle(loss_fn: LossFn) -> Oracle:
    """An oracle that calls ``loss_fn`` in this process, with the package's reference loss booby-trapped.

    A call that reached the reference (even one that caught the error and fell back to
    something else) is reported as raising ``ReferenceUsed``.
    """
    def oracle(request: Request) -> Answer:
        with reference_guard() as guard:
            answer = evaluate(loss_fn, request)
        if guard.tripped:
            return Answer("raised", error="ReferenceUsed: the package's reference mdn_loss was called",
                          mutated=answer.mutated, seconds=answer.seconds)
        return answer
    return oracle


def _not_callable(loss_fn) -> Optional[CheckFailed]:
    if callable(loss_fn):
        return None
    return _fail(f"mdn_loss must be a function, got {type(loss_fn).__name__}: define it with def mdn_loss(pi, mu, "
                 "sigma, z_next): in the answer cell", "not_implemented")


def check_cell_metadata(name: str, points: int) -> dict:
    """Metadata of the notebook cell running check ``name``: the ``check`` tag, its points, and an
    nbgrader grade cell. The exercise notebook and the grader's canonical notebook both use it."""
    return {"tags": ["check"], "check": name, "points": points,
            "nbgrader": {"grade": True, "solution": False, "locked": True, "points": points,
                         "grade_id": f"check_{name}", "schema_version": 3}}


def run_check(name: str, loss_fn: LossFn) -> None:
    """Run one check in the notebook: print a one-line verdict, and raise ``CheckFailed`` if it fails.

    The exception's message is ``[name] <course message>``; in a notebook it shows without
    the checker's frames.
    """
    if name not in CHECKS:
        raise KeyError(f"unknown check {name!r}; the checks are {', '.join(CHECKS)}")
    check = CHECKS[name]
    problem = _not_callable(loss_fn)
    result = (CheckResult(name, check.points, False, check.description, str(problem), problem.mistake)
              if problem else drive(name, local_oracle(loss_fn)))
    if result.passed:
        print(f"✓ {name} ({check.points} pt): {result.detail}")
        return
    print(f"✗ {name} ({check.points} pt): {check.description}")
    raise CheckFailed(f"[{name}] {result.message}", check=name, mistake=result.mistake) from None


def run_all_checks(loss_fn: LossFn, names: Optional[List[str]] = None) -> Dict[str, CheckResult]:
    """Run every check (or those in ``names``) with the local oracle; return {name: CheckResult}."""
    results: Dict[str, CheckResult] = {}
    for name in names or list(CHECKS):
        problem = _not_callable(loss_fn)
        if problem:
            check = CHECKS[name]
            results[name] = CheckResult(name, check.points, False, check.description, str(problem), problem.mistake)
        else:
            results[name] = drive(name, local_oracle(loss_fn))
    return results
