"""Diagnostic checks for the exercise: implement ``mdn_loss(pi, mu, sigma, z_next)``.

Each check calls the student's function on fresh random inputs, compares the
answer with a float64 computation, and on failure raises ``CheckFailed`` (an
``AssertionError``) whose message names the most likely mistake and how to fix
it. The same registry (``CHECKS``) drives the exercise notebook's ``check``
cells and the instructor's grader, so the checks live in one place and a
student cannot weaken them by editing a notebook.

Answers are held to real tensors: the result must be exactly a ``torch.Tensor``
(a subclass or an object whose ``==`` always says True gets nowhere) and it is
converted to a Python float before any comparison.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import torch

__all__ = ["CheckFailed", "Check", "CHECKS", "run_check", "run_all_checks", "reference_guard",
           "check_cell_metadata"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class CheckFailed(AssertionError):
    """A check found a wrong answer; the message says what is wrong and how to fix it."""


class ReferenceUsed(RuntimeError):
    """Raised inside a student's function when it calls the package's reference loss."""


@dataclass(frozen=True)
class Check:
    name: str
    points: int
    description: str
    run: Callable[[LossFn], str]


# ---------------------------------------------------------------- inputs and the float64 truth

def _fresh_generator() -> torch.Generator:
    return torch.Generator().manual_seed(secrets.randbits(62))


def _random_mixture(g: torch.Generator, lead=(64,), d: int = 3, k: int = 4):
    logits = torch.randn(*lead, d, k, generator=g)
    pi = torch.softmax(logits, dim=-1)
    # Means and targets within +-2 and sigma in [0.4, 2]: every target is within 10 sigma of every
    # mean, where even a naive log(sum(exp)) stays finite in float32. So each mistake fails the same
    # checks on every run, and underflow is tested on purpose, by far_from_means alone.
    mu = torch.randn(*lead, d, k, generator=g).clamp(-2.0, 2.0)
    sigma = 0.4 + 1.6 * torch.rand(*lead, d, k, generator=g)
    z = torch.randn(*lead, d, generator=g).clamp(-2.0, 2.0)
    return pi, mu, sigma, z


def _nll64(pi, mu, sigma, z) -> torch.Tensor:
    """The correct mean NLL in float64 (differentiable): logsumexp over K, sum over D, mean over the rest."""
    p, m, s, t = (x.double() for x in (pi, mu, sigma, z))
    log_comp = -0.5 * ((t.unsqueeze(-1) - m) / s) ** 2 - torch.log(s) - _HALF_LOG_2PI
    return -torch.logsumexp(torch.log(p) + log_comp, dim=-1).sum(-1).mean()


def _truth(pi, mu, sigma, z) -> float:
    return float(_nll64(pi, mu, sigma, z))


def _mistakes(pi, mu, sigma, z) -> Dict[str, float]:
    """What common wrong implementations would return on these inputs (float64)."""
    p, m, s, t = (x.double() for x in (pi, mu, sigma, z))
    d = t.shape[-1]
    sq = ((t.unsqueeze(-1) - m) / s) ** 2
    log_comp = -0.5 * sq - torch.log(s) - _HALF_LOG_2PI
    per_dim = torch.logsumexp(torch.log(p) + log_comp, dim=-1)
    out = {
        "wrong sign: you return the log-likelihood, not its negative": float(per_dim.sum(-1).mean()),
        "mean over latent dimensions instead of sum: the dimensions are independent, so their log-likelihoods add":
            float(-per_dim.mean()),
        "summed over the batch instead of averaged: take .mean() over samples": float(-per_dim.sum()),
        "missing log-weights: add log(pi) to each component's log-density before the logsumexp":
            float(-torch.logsumexp(log_comp, dim=-1).sum(-1).mean()),
        "weights multiplied in log space: use log(pi) + log N(...), not pi * log N(...)":
            float(-torch.logsumexp(p * log_comp, dim=-1).sum(-1).mean()),
        "sigma used as a variance: sigma is the standard deviation, so divide (z - mu) by sigma and subtract log(sigma)":
            float(-torch.logsumexp(torch.log(p) - 0.5 * (t.unsqueeze(-1) - m) ** 2 / s - 0.5 * torch.log(s)
                                   - _HALF_LOG_2PI, dim=-1).sum(-1).mean()),
        "missing the constant -0.5*log(2*pi) in the Gaussian log-density":
            float(-torch.logsumexp(torch.log(p) - 0.5 * sq - torch.log(s), dim=-1).sum(-1).mean()),
        "missing the -log(sigma) term of the Gaussian log-density":
            float(-torch.logsumexp(torch.log(p) - 0.5 * sq - _HALF_LOG_2PI, dim=-1).sum(-1).mean()),
        "missing the 1/2 in -0.5*((z - mu)/sigma)**2":
            float(-torch.logsumexp(torch.log(p) - sq - torch.log(s) - _HALF_LOG_2PI, dim=-1).sum(-1).mean()),
    }
    if d == 1:
        out.pop("mean over latent dimensions instead of sum: the dimensions are independent, so their log-likelihoods add")
    return out


# ---------------------------------------------------------------- calling the student's function safely

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


def _call(loss_fn: LossFn, *args) -> torch.Tensor:
    if not callable(loss_fn):
        raise CheckFailed(f"mdn_loss must be a function, got {type(loss_fn).__name__}")
    with reference_guard() as guard:
        try:
            result = loss_fn(*args)
        except ReferenceUsed:
            result = None
        except NotImplementedError as exc:
            raise CheckFailed(f"mdn_loss is not implemented yet ({exc}). Write your answer in the answer cell above.") from None
        except CheckFailed:
            raise
        except Exception as exc:
            raise CheckFailed(f"mdn_loss raised {type(exc).__name__}: {exc}") from None
    if guard.tripped:
        raise CheckFailed("your mdn_loss calls the package's reference implementation (mdn_course.mdn_loss); "
                          "the exercise is to write the computation yourself, so this scores zero")
    return result


def _as_float(result, what: str = "mdn_loss") -> float:
    if type(result) is not torch.Tensor:
        hint = ""
        if isinstance(result, (float, int)):
            hint = " (did you call .item()? keep it a tensor so gradients can flow)"
        raise CheckFailed(f"{what} must return a torch.Tensor, got {type(result).__name__}{hint}")
    if result.dim() != 0:
        raise CheckFailed(f"{what} must return a scalar (0-dimensional) tensor, got shape {tuple(result.shape)}: "
                          "sum over the latent dimensions, then average over every sample with .mean()")
    if not result.is_floating_point():
        raise CheckFailed(f"{what} must return a floating-point tensor, got {result.dtype}")
    return float(result.detach().double().cpu().item())


def _close(a: float, b: float, rel: float = 1e-4, abs_: float = 1e-4) -> bool:
    return math.isfinite(a) and abs(a - b) <= abs_ + rel * abs(b)


def _diagnose(got: float, pi, mu, sigma, z, expected: float) -> str:
    if not math.isfinite(got):
        return (f"mdn_loss returned {got}. A log of a density that underflowed to zero gives inf; "
                "compute log(sum_k pi_k N_k) as torch.logsumexp(log(pi) + log N, dim=-1), never log(sum(exp(...))).")
    for mistake, value in _mistakes(pi, mu, sigma, z).items():
        if _close(got, value, rel=1e-3, abs_=1e-3):
            return f"mdn_loss returned {got:.4f} where {expected:.4f} was expected. Likely mistake: {mistake}."
    return (f"mdn_loss returned {got:.4f} where {expected:.4f} was expected, and it matches none of the usual "
            "mistakes. Re-check each step: log N = -((z-mu)/sigma)**2 / 2 - log(sigma) - log(2*pi) / 2; "
            "logsumexp(log(pi) + log N) over K; sum over dimensions; mean over samples; negate.")


def _expect_value(loss_fn: LossFn, pi, mu, sigma, z) -> float:
    got = _as_float(_call(loss_fn, pi, mu, sigma, z))
    expected = _truth(pi, mu, sigma, z)
    if not _close(got, expected):
        raise CheckFailed(_diagnose(got, pi, mu, sigma, z, expected))
    return got


# ---------------------------------------------------------------- the checks

def _check_returns_scalar(loss_fn: LossFn) -> str:
    pi, mu, sigma, z = _random_mixture(_fresh_generator())
    mu.requires_grad_(True)
    result = _call(loss_fn, pi, mu, sigma, z)
    _as_float(result)
    if not result.requires_grad:
        raise CheckFailed("the result is detached from the inputs (no gradient can flow back to mu): "
                          "use torch operations only, without .item(), .numpy() or torch.tensor(...) on the result")
    return "returns a scalar tensor that gradients can flow through"


def _check_single_gaussian(loss_fn: LossFn) -> str:
    g = _fresh_generator()
    pi, mu, sigma, z = _random_mixture(g, lead=(128,), d=2, k=1)
    got = _as_float(_call(loss_fn, pi, mu, sigma, z))
    normal = torch.distributions.Normal(mu[..., 0].double(), sigma[..., 0].double())
    expected = float(-normal.log_prob(z.double()).sum(-1).mean())
    if not _close(got, expected):
        raise CheckFailed("with one component the loss must equal the Gaussian NLL "
                          "-Normal(mu, sigma).log_prob(z) summed over dimensions and averaged. "
                          + _diagnose(got, pi, mu, sigma, z, expected))
    return "K = 1 matches torch.distributions.Normal"


def _check_mixture(loss_fn: LossFn) -> str:
    _expect_value(loss_fn, *_random_mixture(_fresh_generator(), lead=(256,), d=3, k=5))
    return "K = 5 mixtures match a float64 computation"


def _check_far_from_means(loss_fn: LossFn) -> str:
    g = _fresh_generator()
    pi, mu, sigma, z = _random_mixture(g, lead=(64,), d=2, k=3)
    sigma = torch.full_like(sigma, 0.05)
    z = mu.max(dim=-1).values + 5.0  # 100 standard deviations above every mean: exp() underflows to 0
    _expect_value(loss_fn, pi, mu, sigma, z)
    tiny = torch.full_like(sigma, 1e-4)
    wide = torch.full_like(sigma, 1e3)
    _expect_value(loss_fn, pi, mu, tiny, mu[..., 0] + 1e-4)
    _expect_value(loss_fn, pi, mu, wide, mu[..., 0] + 1e3)
    return "stays finite and exact far from every mean and for sigma from 1e-4 to 1e3 (logsumexp)"


def _check_leading_dims(loss_fn: LossFn) -> str:
    g = _fresh_generator()
    pi, mu, sigma, z = _random_mixture(g, lead=(4, 7), d=2, k=3)
    _expect_value(loss_fn, pi, mu, sigma, z)
    _expect_value(loss_fn, *(t[0, 0:1] for t in (pi, mu, sigma, z)))
    return "works with (batch, time) leading dimensions and averages over all of them"


def _check_gradients(loss_fn: LossFn) -> str:
    g = _fresh_generator()
    pi, mu, sigma, z = _random_mixture(g, lead=(32,), d=2, k=3)
    mine = [t.clone().double().requires_grad_(True) for t in (mu, sigma)]
    truth = [t.clone().double().requires_grad_(True) for t in (mu, sigma)]
    result = _call(loss_fn, pi.double(), mine[0], mine[1], z.double())
    _as_float(result)
    if not result.requires_grad:
        raise CheckFailed("the result carries no gradient: keep every step a torch operation")
    result.backward()
    _nll64(pi, truth[0], truth[1], z).backward()
    for name, a, b in (("mu", mine[0], truth[0]), ("sigma", mine[1], truth[1])):
        if a.grad is None or not torch.isfinite(a.grad).all():
            raise CheckFailed(f"the gradient with respect to {name} is missing or not finite")
        if not torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6):
            raise CheckFailed(f"the gradient with respect to {name} is wrong, so the value is wrong somewhere too")
    return "gradients with respect to mu and sigma are finite and correct"


def _check_learns(loss_fn: LossFn) -> str:
    from ..data import bayes_optimal_nll, generate_synthetic_data
    from ..model import MDNRNN
    from ..training import evaluate_nll

    z, a = generate_synthetic_data(400, seq_len=12, seed=7)
    z_test, a_test = generate_synthetic_data(400, seq_len=12, seed=8)
    floor = bayes_optimal_nll(z_test, a_test)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = MDNRNN(hidden_dim=32, n_components=3)
        before = evaluate_nll(model, z_test, a_test)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
        order = torch.Generator().manual_seed(0)
        for _ in range(150):
            idx = torch.randint(0, z.shape[0], (64,), generator=order)
            out = model(z[idx, :-1], a[idx])
            loss = _call(loss_fn, out.pi, out.mu, out.sigma, z[idx, 1:])
            _as_float(loss)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
    after = evaluate_nll(model, z_test, a_test)
    if not (math.isfinite(after) and after < before - 1.0 and after < floor + 1.0):
        raise CheckFailed(f"training with your loss moved the held-out NLL from {before:.2f} to {after:.2f} nats/step "
                          f"(floor {floor:.2f}); a correct loss gets within 1 nat of the floor in these 150 steps")
    return f"150 training steps with your loss: held-out NLL {before:.1f} -> {after:.1f} nats/step (floor {floor:.1f})"


CHECKS: Dict[str, Check] = {c.name: c for c in (
    Check("returns_scalar", 1, "returns a differentiable scalar tensor", _check_returns_scalar),
    Check("single_gaussian", 2, "K = 1 equals the Gaussian negative log-likelihood", _check_single_gaussian),
    Check("mixture", 2, "mixtures match a float64 reference on random inputs", _check_mixture),
    Check("far_from_means", 2, "finite and exact far from the means and at extreme sigmas", _check_far_from_means),
    Check("leading_dims", 1, "any leading (batch, time) dimensions, averaged", _check_leading_dims),
    Check("gradients", 1, "correct, finite gradients", _check_gradients),
    Check("learns", 1, "a short training run with your loss learns the world", _check_learns),
)}


def check_cell_metadata(name: str, points: int) -> dict:
    """Metadata of the notebook cell running check ``name``: the ``check`` tag, its points, and an
    nbgrader grade cell. The exercise notebook and the grader's canonical notebook both use it."""
    return {"tags": ["check"], "check": name, "points": points,
            "nbgrader": {"grade": True, "solution": False, "locked": True, "points": points,
                         "grade_id": f"check_{name}", "schema_version": 3}}


def run_check(name: str, loss_fn: LossFn) -> None:
    """Run one check, print a one-line verdict, and raise ``CheckFailed`` with the diagnosis if it fails."""
    if name not in CHECKS:
        raise KeyError(f"unknown check {name!r}; the checks are {', '.join(CHECKS)}")
    check = CHECKS[name]
    try:
        detail = check.run(loss_fn)
    except CheckFailed as exc:
        print(f"✗ {check.name} ({check.points} pt): {check.description}")
        raise CheckFailed(f"[{check.name}] {exc}") from None
    print(f"✓ {check.name} ({check.points} pt): {detail}")


def run_all_checks(loss_fn: LossFn, names: Optional[List[str]] = None) -> Dict[str, Optional[str]]:
    """Run every check; return {name: None if passed else the failure message}."""
    results: Dict[str, Optional[str]] = {}
    for name in names or list(CHECKS):
        try:
            CHECKS[name].run(loss_fn)
            results[name] = None
        except CheckFailed as exc:
            results[name] = str(exc)
    return results
