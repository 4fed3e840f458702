"""The checks of the ``mdn_loss`` exercise: their inputs and judges, each check declared once.

:data:`MDN_LOSS` is the exercise: students write ``mdn_loss(pi, mu, sigma, z_next)``. Each
judge below is declared as one of its checks by ``@MDN_LOSS.check(...)``, with its points,
one line saying what it tests, the paragraph the notebook shows above its cell, and (for
``learns``, a training run) ``slow=True``; :data:`CHECKS` is the registry, in order, that the
notebook's check cells, the hints, lesson 4 and the grader all read. A judge never calls the
student's function: it yields :class:`~mdn_course.sandboxed.oracle.Request` objects and judges
the :class:`~mdn_course.sandboxed.oracle.Answer` facts that come back against the float64
truth, naming the mistake (:mod:`.mistakes`) a wrong value matches.

Inputs are drawn from the check's generator, and kept only where every diagnosis is told
apart (:func:`pick`), so a mistake fails the same checks with the same name on every draw.
"""
from __future__ import annotations

import math
from typing import Callable, FrozenSet, Generator, Iterable, Optional, Sequence, Tuple

import torch

from .. import loss as reference
from ..data import bayes_optimal_nll, generate_synthetic_data
from ..device import get_device
from ..model import MDNRNN
from ..sandboxed.oracle import Answer, Request
from ..training import cpu_threads, evaluate_nll
from .mistakes import (DIAGNOSIS_TOL, MISTAKES, Args, diagnose, nll64, passes, separation, survivors, truth)
from .registry import CheckFailed, Exercise

__all__ = ["MDN_LOSS", "CHECKS", "mixture_args", "far_args", "extreme_sigma_args", "pick", "on_device",
           "LEARNS_STEPS", "LEARNS_SEED", "LEARNS_NLL_MARGIN", "LEARNS_REPORT_TOL", "LEARNS_BRANCH_MIN", "LEARNS_GAP_MAX",
           "fork_shape"]

MDN_LOSS = Exercise("mdn_loss", ("pi", "mu", "sigma", "z_next"), MISTAKES,
                    references=(reference.mdn_loss, reference.mdn_nll_from_logs),
                    unusable_hint="make sure mdn_loss returns a scalar tensor computed from its inputs",
                    maths=("log N(z; mu, sigma) = -((z - mu)/sigma)^2 / 2 - log sigma - log(2 pi)/2 for every "
                           "component; log p(z_d) = logsumexp over k of (log pi_k + log N_k); loss = - (sum over d "
                           "of log p(z_d)), averaged over every batch and time position"),
                    after="on to lesson 4, which trains with it")
CHECKS = MDN_LOSS.checks   # filled below, one @MDN_LOSS.check per judge, in this order

Judgement = Generator[Request, Answer, str]


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
    if "must match the size of tensor" in error:
        return _fail(f"mdn_loss raised {error}. Two shapes did not broadcast: z_next is (..., D) and mu is "
                     "(..., D, K), so z_next needs a trailing axis to meet the K components.", "broadcast_error")
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
    if answer.dtype in ("float16", "bfloat16"):
        raise _fail(f"mdn_loss returned a {answer.dtype} tensor: about three significant digits, where the loss is "
                    "compared to a few parts in a million. Compute in the inputs' dtype.", "half_precision")
    if need_grad and not answer.requires_grad:
        raise _fail("the result is detached from the inputs (no gradient can flow back to mu and sigma): "
                    "use torch operations only, without .item(), .numpy(), .detach() or torch.tensor(...)",
                    "detached")
    return answer


def _expect_value(answer: Answer, args: Args, preface: str = "", among: Optional[Iterable[str]] = None) -> float:
    """Fail with a diagnosis (among the mistakes ``among``) unless the answer's value is the float64 NLL of ``args``."""
    got = _tensor(answer).value
    expected = truth(args)
    if not passes(got, expected):
        message, mistake = diagnose(got, expected, args, among)
        raise _fail(preface + message, mistake)
    return got


# ---------------------------------------------------------------- inputs

def mixture_args(g: torch.Generator, lead: Sequence[int] = (64,), d: int = 3, k: int = 4,
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
    return on_device({"pi": pi, "mu": mu, "sigma": sigma, "z_next": z}, dtype)


def on_device(args: Args, dtype: torch.dtype = torch.float32) -> Args:
    """``args`` on the course's device (``get_device()``) as ``dtype``: every check runs on a GPU too."""
    device = get_device()
    if device.type == "mps" and dtype == torch.float64:
        device = torch.device("cpu")  # MPS has no float64
    return {n: t.to(device=device, dtype=dtype) for n, t in args.items()}


def far_args(g: torch.Generator) -> Args:
    """Targets 100 standard deviations above every mean, where exp() of every log-density underflows.

    The component nearest the target gets a small weight (about 0.05 to 0.25), so a missing
    log-weight moves the loss by 1.4 to 3 nats per dimension, clear of the constant log(2 pi)/2,
    and weights added without their log (which move it by their size) are told from it.
    """
    lead, d, k = (64,), 2, 3
    mu = 3.0 * torch.rand(*lead, d, k, generator=g) - 1.5
    logits = torch.randn(*lead, d, k, generator=g)
    top = mu.argmax(dim=-1, keepdim=True)
    logits = logits.scatter(-1, top, -1.5)   # the nearest component has weight about 0.05-0.25
    pi = torch.softmax(logits, dim=-1)
    sigma = torch.full((*lead, d, k), 0.05)
    z = mu.max(dim=-1).values + 5.0
    return on_device({"pi": pi, "mu": mu, "sigma": sigma, "z_next": z})


def extreme_sigma_args(g: torch.Generator, scale: float) -> Args:
    """All components within a few ``scale`` of each other and of the target, with sigma = ``scale``."""
    lead, d, k = (64,), 2, 3
    pi = torch.softmax(torch.randn(*lead, d, k, generator=g), dim=-1)
    centre = 3.0 * torch.rand(*lead, d, 1, generator=g) - 1.5
    mu = centre + scale * (4.0 * torch.rand(*lead, d, k, generator=g) - 2.0)
    sigma = scale * (0.5 + torch.rand(*lead, d, k, generator=g))
    z = centre[..., 0] + scale * (2.0 * torch.rand(*lead, d, generator=g) - 1.0)
    return on_device({"pi": pi, "mu": mu, "sigma": sigma, "z_next": z}, torch.float64)


def pick(make: Callable[[], Args], among: Optional[Iterable[str]] = None, tries: int = 50) -> Args:
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

@MDN_LOSS.check(points=1, description="returns a differentiable scalar tensor", note=(
    "A loss you can train with is one number that remembers how it was computed. This check asks for a "
    "0-dimensional tensor connected to `mu`: `.item()`, `.numpy()` or a new tensor built from the result "
    "would cut the gradient off. Your function always gets copies of its inputs, and changing them in "
    "place (`mu -= ...`, `z_next.unsqueeze_(-1)`) fails every check: the caller still needs them."))
def returns_scalar(rng: torch.Generator) -> Judgement:
    answer = yield Request(mixture_args(rng), grad_of=("mu",))  # any inputs: no value is judged
    _tensor(answer, need_grad=True)
    if answer.grad_error or answer.grads.get("mu") is None:
        raise _fail("no gradient reaches mu from your result: keep every step a torch operation on the inputs",
                    "detached")
    return "returns a scalar tensor that gradients can flow through"


@MDN_LOSS.check(points=2, description="K = 1 equals the Gaussian negative log-likelihood", note=(
    "With one component (K = 1) a mixture is just a Gaussian, so your loss must agree with "
    "`torch.distributions.Normal(mu, sigma).log_prob`, negated, summed over dimensions and averaged. "
    "If this fails, look at the Gaussian log-density first: the `-log(sigma)` term, the factor 1/2, the "
    "constant, and whether `sigma` was treated as a variance. (Mistakes in how components are mixed "
    "cannot show with one component; the next check looks for those.)"))
def single_gaussian(rng: torch.Generator) -> Judgement:
    args = pick(lambda: mixture_args(rng, lead=(128,), d=2, k=1))
    answer = yield Request(args)
    _expect_value(answer, args, preface="With one component the loss must equal the Gaussian NLL "
                                        "-Normal(mu, sigma).log_prob(z) summed over dimensions and averaged. ")
    return "K = 1 matches the Gaussian negative log-likelihood"


@MDN_LOSS.check(points=2, description="mixtures match a float64 reference on random inputs", note=(
    "Random mixtures with K = 5 components and 8 latent dimensions, compared with the same computation "
    "in float64. When your number is wrong, the message names the mistake whose value it matches within "
    f"{DIAGNOSIS_TOL} nats: the inputs are chosen so that no two usual mistakes give values that close."))
def mixture(rng: torch.Generator) -> Judgement:
    args = pick(lambda: mixture_args(rng, lead=(256,), d=8, k=5))
    _expect_value((yield Request(args)), args)
    return "K = 5 mixtures match a float64 computation"


@MDN_LOSS.check(points=2, description="finite and exact far from the means and at extreme sigmas", note=(
    "Targets 100 standard deviations from every mean, then standard deviations of 1e-4 and 1e3. Far "
    "from every mean each component's density is smaller than the smallest float32, so "
    "`log(sum(exp(...)))` returns `-inf` and the loss `inf`; `torch.logsumexp` subtracts the largest "
    "term before exponentiating and stays exact. Trained models meet such targets early on."))
def far_from_means(rng: torch.Generator) -> Judgement:
    among: Optional[FrozenSet[str]] = None   # the mistakes an answer that passed every request so far may have
    for make in (lambda: far_args(rng), lambda: extreme_sigma_args(rng, 1e-4),
                 lambda: extreme_sigma_args(rng, 1e3)):
        args = pick(make, among)
        answer = yield Request(args)
        try:
            _expect_value(answer, args, among=among)
        except CheckFailed as exc:
            tiny = args["sigma"].max() < 1e-3
            if exc.mistake is None and among is not None and tiny and math.isfinite(answer.value):
                # right far from the means, wrong only where sigma is tiny: no catalogued mistake does that
                raise _fail(f"{exc} Right 100 sigma from the means, wrong only at sigma = 1e-4: "
                            f"{MISTAKES['sigma_floor'].nudge}", "sigma_floor") from None
            raise
        among = survivors(args, among)
    return "stays finite and exact 100 sigma from every mean and for sigma from 1e-4 to 1e3 (logsumexp)"


@MDN_LOSS.check(points=1, description="any leading (batch, time) dimensions, averaged", note=(
    "During training `pi` has shape (batch, time, D, K), not just (N, D, K). Reduce over the last axis "
    "for K and the next one for D, and average over everything in front, whatever its shape: `dim=-1` "
    "works where `dim=2` does not."))
def leading_dims(rng: torch.Generator) -> Judgement:
    args = pick(lambda: mixture_args(rng, lead=(4, 7), d=6, k=3))
    _expect_value((yield Request(args)), args)
    among = survivors(args)
    one = pick(lambda: mixture_args(rng, lead=(1,), d=2, k=3), among)
    _expect_value((yield Request(one)), one, among=among)
    return "works with (batch, time) leading dimensions and averages over all of them"


@MDN_LOSS.check(points=1, description="correct, finite gradients", note=(
    "Training follows the gradient, so it has to be right as well as finite. Your loss is "
    "differentiated with respect to `mu` and `sigma` in float64 and compared with the exact gradient."))
def gradients(rng: torch.Generator) -> Judgement:
    args = pick(lambda: mixture_args(rng, lead=(32,), d=8, k=4, dtype=torch.float64))
    answer = yield Request(args, grad_of=("mu", "sigma"))
    _tensor(answer, need_grad=True)
    if answer.grad_error:
        raise _fail(f"calling .backward() on your result raised {answer.grad_error}", "wrong_gradient")
    exact = {n: args[n].detach().cpu().double().requires_grad_(n in ("mu", "sigma")) for n in args}
    nll64(exact["pi"], exact["mu"], exact["sigma"], exact["z_next"]).backward()
    for name in ("mu", "sigma"):
        grad = answer.grads.get(name)
        if grad is None:
            raise _fail(f"no gradient reaches {name} from your result: keep every step a torch operation",
                        "detached")
        if tuple(grad.shape) != tuple(exact[name].shape) or not torch.isfinite(grad).all():
            raise _fail(f"the gradient with respect to {name} is not finite", "wrong_gradient")
        if not torch.allclose(grad.double(), exact[name].grad, rtol=1e-4, atol=1e-6):
            got, expected = answer.value, truth(args)
            if got is not None and not passes(got, expected):
                message, mistake = diagnose(got, expected, args)
                raise _fail(f"the gradient with respect to {name} is wrong because the value is: {message}", mistake)
            raise _fail(f"the value is right but the gradient with respect to {name} is wrong: "
                        "is a step detached, clamped or replaced by a constant?", "wrong_gradient")
    return "gradients with respect to mu and sigma are finite and correct"


# ---------------------------------------------------------------- learns: train the lesson's model with the answer's gradients

LEARNS_STEPS = 200
LEARNS_SEED = 7                # data, model and batch order
LEARNS_NLL_MARGIN = 0.3        # nats/step above the Bayes floor a correct loss stays within on held-out data
LEARNS_REPORT_TOL = 0.05       # nats: how far the loss reported at any step may be from the batch's true NLL
LEARNS_BRANCH_MIN = 0.2       # probability the model must put on each side of the fork (a right model: 0.5)
LEARNS_GAP_MAX = 0.15         # probability it may put between the branches (a right model: 0; one Gaussian: 0.29)
LEARNS_SLOW_CALL_S = 0.02      # a loss slower than this per call makes lesson 4's training crawl: warn
LEARNS_MAX_S = 60.0            # stop training (and fail) after this much time inside the answer


def fork_shape(model, device: torch.device) -> Tuple[float, float]:
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


@MDN_LOSS.check(points=1, description="a short training run with your loss learns the world", slow=True, note=(
    f"The end-to-end test: a small MDN-RNN is trained for {LEARNS_STEPS} steps on the course's world, "
    "on one CPU thread, following the gradients of **your** loss. It passes when the loss you report at "
    f"every step is within {LEARNS_REPORT_TOL} nats of the true NLL of that batch (the training curve "
    f"you would plot), the held-out NLL ends within {LEARNS_NLL_MARGIN} nats of the best possible "
    "value, and the model predicts two branches at the fork with nothing between them. A loss "
    "multiplied by a constant trains the very same model (Adam's steps do not depend on the "
    "gradients' scale), so only its reported numbers can give it away: a constant close enough to 1 "
    "passes here and is caught by the exact value checks above. It takes a second or two; a loss "
    "slower than 20 ms a call gets a warning."))
def learns(rng: torch.Generator) -> Judgement:
    """Train the lesson's MDN-RNN for about a second with the answer's gradients; judge what it reports and trains.

    Each step the judge builds the model's mixture, asks the oracle for the loss value and its
    gradients with respect to pi, mu and sigma, and backpropagates those gradients into the
    network itself (the answer never sees the model). It passes only if (1) at every step the
    value the answer reports is within LEARNS_REPORT_TOL nats of the float64 NLL of that batch
    (the training curve a student would plot); (2) the held-out NLL, measured here, ends within
    LEARNS_NLL_MARGIN of the Bayes floor; (3) the predicted distribution at the fork has two
    branches and nothing between them (:func:`fork_shape`). (2) and (3) catch answers whose
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
    device = get_device()
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
            right = truth(batch)
            if not (math.isfinite(answer.value) and abs(answer.value - right) <= LEARNS_REPORT_TOL):
                message, mistake = diagnose(answer.value, right, batch)
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
        branch, middle = fork_shape(model, device)
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

