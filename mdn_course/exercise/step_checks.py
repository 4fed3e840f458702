"""The checks of the training-step exercise: their inputs and judges, each check declared once.

:data:`TRAINING_STEP` is the exercise: students write ``training_step(model, optimizer, z, a,
clip_norm)``. Each judge below is declared as one of its checks by ``@TRAINING_STEP.check(...)``.
A judge never calls the student's step: it yields :class:`~mdn_course.sandboxed.oracle.Request`
objects holding the parameters a step starts from, a batch and the optimiser's settings, and
judges the facts that come back (the loss the step returned, the parameters after it, the
gradients it left) against its own float64 step on the same parameters
(:func:`.step_mistakes.simulate`), naming the mistake a wrong value or update matches.

The steps start from :func:`trained_params`, a small MDN-RNN trained here for a second (once
per process), because only a model that has learned the world tells a misaligned action from
the right one; the batches are drawn from each check's generator and kept only where every
diagnosis is told apart (:func:`pick`). Each call of a check uses a batch size no other call
uses, so a step that carries its LSTM state from one call to the next fails on the next call
whatever order the checks run in (the model refuses a state of another batch size).
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Generator, List, Optional, Sequence, Tuple

import torch

from ..data import bayes_optimal_nll, generate_synthetic_data
from ..loss import mdn_nll_from_logs
from ..model import MDNRNN
from ..sandboxed.oracle import Answer, Request
from ..training import cpu_threads, evaluate_nll
from .checks import LEARNS_BRANCH_MIN, LEARNS_GAP_MAX, LEARNS_NLL_MARGIN, fork_shape
from .registry import CheckFailed, Exercise
from .step_mistakes import (MISTAKES, RIGHT, STEP_ARGS, STEP_MATHS, UPDATE_MISTAKES, VALUE_MISTAKES, VALUE_TOL,
                            Outcome, Setup, Step, diagnose_update, diagnose_value, flat_parameters, gradient_norm,
                            load_flat,
                            simulate, update_candidates, update_passes, update_separation, value_candidates,
                            value_passes, value_separation)

__all__ = ["TRAINING_STEP", "CHECKS", "trained_params", "batch", "pick", "MODEL", "TRAINS_STEPS", "TRAINS_SEED",
           "TRAINS_REPORT_TOL", "trains_lr"]

TRAINING_STEP = Exercise("training_step", STEP_ARGS, MISTAKES, references=(),
                         unusable_hint="make sure training_step returns the batch's loss as a number",
                         maths=STEP_MATHS + "; in order: clear the gradients, predict, loss, backward, clip, step, "
                                            "return the loss",
                         after="on to lesson 5, where the trained model dreams")
CHECKS = TRAINING_STEP.checks   # filled below, one @TRAINING_STEP.check per judge, in this order

Judgement = Generator[Request, Answer, str]
MODEL = Setup(hidden_dim=32, n_components=3)   # the model every check's steps train
NO_CLIP = 1000.0                               # a clip norm no gradient here reaches


def _fail(message: str, mistake: Optional[str] = None) -> CheckFailed:
    return CheckFailed(message, mistake=mistake)


# ---------------------------------------------------------------- inputs

@lru_cache(maxsize=1)
def trained_params(steps: int = 150, seed: int = 11) -> torch.Tensor:
    """The flat parameters (float32, CPU) of ``MODEL`` trained for ``steps`` steps with the right step: a model
    that has learned how actions move the world, so that every misalignment costs nats. About a second."""
    z, a = generate_synthetic_data(400, seq_len=12, seed=seed)
    with cpu_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MDNRNN(hidden_dim=MODEL.hidden_dim, n_components=MODEL.n_components)
        optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
        order = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(0, z.shape[0], (64,), generator=order)
            out = model(z[idx, :-1], a[idx])
            loss = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, z[idx, 1:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MODEL.clip_norm)
            optimizer.step()
    return flat_parameters(model).clone()


def batch(rng: torch.Generator, size: int, steps: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """A batch of ``size`` sequences of ``steps`` steps of the course's world, drawn with ``rng``."""
    return generate_synthetic_data(size, seq_len=steps, generator=rng)


def _request(step: Step, setup: Setup, fresh: bool) -> Request:
    return Request({"params": step.params, "z": step.z, "a": step.a}, options=setup.options(fresh))


def _truth_trajectory(setup: Setup, batches: Sequence[Tuple[torch.Tensor, torch.Tensor]],
                      start: torch.Tensor) -> List[Step]:
    """The steps of a check when every step is right: each starts where the right step before it ended."""
    history: List[Step] = []
    params = start
    for z, a in batches:
        history.append(Step(params, z, a))
        params = (params.double() + simulate(RIGHT, setup, history).delta).float()
    return history


def _margin(setup: Setup, history: Sequence[Step], values=VALUE_MISTAKES, updates=UPDATE_MISTAKES) -> float:
    """The smallest separation of the value and update diagnoses over every step of ``history`` (when each
    step is right: the parameters after it are the right step's)."""
    margin = math.inf
    for s in range(1, len(history) + 1):
        steps = history[:s]
        truth = simulate(RIGHT, setup, steps)
        after = (steps[-1].params.double() + truth.delta).float()
        margin = min(margin, value_separation(truth.value, value_candidates(setup, steps, values, after)))
        if updates:
            update_margin = update_separation(truth, update_candidates(setup, steps, updates), setup.lr)
            margin = min(margin, update_margin / 10)   # shares of an update, on the scale of nats
    return margin


def pick(make: Callable[[], Tuple[Setup, List[Step]]], tries: int = 20, **among) -> Tuple[Setup, List[Step]]:
    """Draw a check's setup and steps with ``make`` until every diagnosis is told apart on them."""
    best, best_margin = None, -math.inf
    for _ in range(tries):
        setup, history = make()
        margin = _margin(setup, history, **among)
        if margin > 0:
            return setup, history
        if margin > best_margin:
            best, best_margin = (setup, history), margin
    return best


def _lr(rng: torch.Generator) -> float:
    """An SGD learning rate no step would hard-code: log-uniform between 0.03 and 0.3."""
    return float(0.03 * 10 ** torch.rand((), generator=rng))


# ---------------------------------------------------------------- reading an answer

def _raised(answer: Answer) -> CheckFailed:
    error = answer.error or ""
    if answer.kind == "not_implemented":
        return _fail(f"training_step is not implemented yet ({error.split(': ', 1)[-1]}). "
                     "Write your step in the answer cell above and run it.", "not_implemented")
    if "must share batch and time sizes" in error or "z_next must have shape" in error:
        return _fail(f"training_step raised {error}. z has one state more than a has actions: the model takes "
                     "T states and T actions and predicts T next states.", "sequence_not_split")
    if "Expected hidden" in error or "backward through the graph a second time" in error:
        return _fail(f"training_step raised {error}. This is what an LSTM state kept from an earlier batch "
                     "does (of another batch size, or still attached to that batch's graph): every batch must "
                     "start from a fresh state.", "carried_state")
    if "does not require grad" in error:
        return _fail(f"training_step raised {error}. The loss carries no gradient: the forward pass ran under "
                     "torch.no_grad() or its result was detached.", "forward_without_grad")
    return _fail(f"training_step raised {error}", "raises")


def _facts(answer: Answer, n_params: int) -> float:
    """The loss the step returned, once the answer is a usable step; else fail naming what is wrong."""
    if answer.mutated:
        raise _fail(f"your training_step changed its input {', '.join(answer.mutated)} in place. The caller uses "
                    "its batches again (every epoch): slice and compute new tensors instead.", "in_place")
    if answer.kind in ("raised", "not_implemented"):
        raise _raised(answer)
    if answer.kind == "other" and answer.type_name == "NoneType":
        raise _fail("training_step returned None: return the batch's loss (loss.item()) so the training loop "
                    "can report it", "returns_nothing")
    if answer.value is None:
        what = f"a tensor of shape {tuple(answer.shape or ())}" if answer.kind == "tensor" else answer.type_name
        raise _fail(f"training_step must return the batch's loss as one number, got {what}", "not_a_number")
    if not math.isfinite(answer.value):
        raise _fail(f"training_step returned {answer.value}: the loss of a batch of the course's world is finite. "
                    "Look for a log of 0 or a division by 0 in what you return.")
    after = answer.tensors.get("params_after")
    if after is None or tuple(after.shape) != (n_params,):
        raise _fail("after your step the model does not have the parameters it was given (did the step build a "
                    "new model, or replace its layers?): train the model you are handed")
    return answer.value


def _grads(answer: Answer) -> Optional[torch.Tensor]:
    present = answer.tensors.get("grads_present")
    grads = answer.tensors.get("grads_after")
    if grads is None or present is None or not bool((present > 0).any()):
        return None
    return grads


def _judge_step(answer: Answer, setup: Setup, history: Sequence[Step], where: str = "",
                values=VALUE_MISTAKES, updates=UPDATE_MISTAKES, check_update: bool = True) -> Tuple[float, Outcome]:
    """Judge one step's answer (the last of ``history``): its facts, its loss, then its update."""
    params = history[-1].params
    got = _facts(answer, params.numel())
    truth = simulate(RIGHT, setup, history)
    if not value_passes(got, truth.value):
        # the loss after the step is the mistake of a step whose update is right: measured after the right update
        right_after = (params.double() + truth.delta).float()
        mistake = diagnose_value(got, truth.value, value_candidates(setup, history, values, right_after))
        head = f"{where}training_step returned {got:.4f} where the loss of this batch is {truth.value:.4f}."
        if mistake is None:
            raise _fail(head + " It matches none of the usual mistakes: inputs z[:, :-1] with a, targets z[:, 1:], "
                               "a fresh LSTM state, and the loss before the update.")
        raise _fail(f"{head} Likely mistake: {MISTAKES[mistake].name}. {MISTAKES[mistake].nudge}", mistake)
    if not check_update:
        return got, truth
    delta = answer.tensors["params_after"].double() - params.double()
    if not update_passes(delta, truth):
        grads = _grads(answer)
        mistake = diagnose_update(delta, grads, truth, update_candidates(setup, history, updates), setup.lr)
        size, right = float(torch.linalg.vector_norm(delta)), float(torch.linalg.vector_norm(truth.delta))
        bites = gradient_norm(setup, history[-1]) > setup.clip_norm
        rule = (f"learning rate {setup.lr:.3g} times the gradient clipped to norm {setup.clip_norm:.3g}" if bites
                else f"learning rate {setup.lr:.3g} times the gradient, which clip_norm = {setup.clip_norm:g} leaves "
                     "as it is")
        numbers = f"(your step moved the parameters by {size:.4g}; the right step, {rule}, moves them by {right:.4g})"
        if mistake is None:
            raise _fail(f"{where}the loss is right but not the update, and not the way any usual mistake does "
                        f"{numbers}. The order: clear the gradients, forward, loss, backward, clip, step.")
        raise _fail(f"{where}the loss is right but not the update. Likely mistake: {MISTAKES[mistake].name}. "
                    f"{MISTAKES[mistake].nudge} {numbers}", mistake)
    return got, truth


# ---------------------------------------------------------------- the judges

@TRAINING_STEP.check(points=1, description="returns the batch's loss as a number and leaves the batch alone", note=(
    "The training loop prints and plots what each step returns, so the step hands back one number: the loss "
    "of the batch it trained on, as a Python float or a 0-dimensional tensor. It must not change `z` or `a`: "
    "the loop reuses its data every epoch."))
def returns_loss(rng: torch.Generator) -> Judgement:
    z, a = batch(rng, 6, 5)
    step = Step(trained_params(), z, a)
    answer = yield _request(step, Setup(lr=_lr(rng)), fresh=True)
    _facts(answer, step.params.numel())
    return "returns the batch's loss as a number and leaves z and a unchanged"


@TRAINING_STEP.check(points=2, description="its loss is z[:, 1:] predicted from z[:, :-1] and a", note=(
    "The loss your step returns is compared with the negative log-likelihood of the next states, $z_{t+1}$, "
    "under the mixtures the model predicts from the states and actions up to $t$, from a fresh LSTM state. "
    "The model here has been trained a little, so it knows how actions move the world: a target that is not "
    "shifted, or an action paired with the wrong state, costs several nats, and the message names the "
    f"mistake whose loss yours matches within {VALUE_TOL} nats."))
def aligned(rng: torch.Generator) -> Judgement:
    def make():
        z, a = batch(rng, 50, 6)
        return Setup(lr=_lr(rng)), [Step(trained_params(), z, a)]
    setup, history = pick(make, updates=())
    _judge_step((yield _request(history[-1], setup, fresh=True)), setup, history, check_update=False)
    return "the loss is that of z[:, 1:] predicted from z[:, :-1] and a, from a fresh state"


@TRAINING_STEP.check(points=2, description="updates the parameters by the optimiser's step on the gradient", note=(
    "One step with plain SGD and a learning rate drawn at random, with a clip norm the gradient never reaches: "
    "the parameters must move by exactly the learning rate times the gradient of the loss. The check reads "
    "the parameters after your step; parameters that did not move, moved by some other amount, or moved "
    "as a freshly made optimiser would move them, are each named."))
def updates(rng: torch.Generator) -> Judgement:
    def make():
        z, a = batch(rng, 40, 8)
        return Setup(lr=_lr(rng), clip_norm=NO_CLIP), [Step(trained_params(), z, a)]
    setup, history = pick(make)
    _judge_step((yield _request(history[-1], setup, fresh=True)), setup, history)
    return "moves the parameters by the learning rate times the gradient (plain SGD)"


@TRAINING_STEP.check(points=2, description="clips the gradient's global norm to clip_norm before the step", note=(
    "A step whose gradient is several times longer than `clip_norm`: the update must be the gradient "
    "rescaled to length `clip_norm` (one factor for all parameters together), times the learning rate. "
    "Not clipping, clipping after the step, clipping each entry or each parameter separately, and clipping "
    "to a constant instead of `clip_norm` each move the parameters differently, and are named."))
def clips(rng: torch.Generator) -> Judgement:
    def make():
        z, a = batch(rng, 44, 8)
        step = Step(trained_params(), z, a)
        share = float(0.2 + 0.25 * torch.rand((), generator=rng))
        return Setup(lr=_lr(rng), clip_norm=share * gradient_norm(MODEL, step)), [step]
    setup, history = pick(make)
    _judge_step((yield _request(history[-1], setup, fresh=True)), setup, history)
    return "clips the gradient's global norm to clip_norm between the backward pass and the step"


@TRAINING_STEP.check(points=1, description="clears the gradients in every step", note=(
    "Three steps in a row on three batches, as in a training loop, with the same model and optimiser. "
    "PyTorch adds each backward pass to the gradients already stored, so each step must start from "
    "cleared gradients, or its update mixes in the batches before it."))
def fresh_gradients(rng: torch.Generator) -> Judgement:
    def make():
        setup = Setup(lr=_lr(rng), clip_norm=NO_CLIP)
        return setup, _truth_trajectory(setup, [batch(rng, size, 6) for size in (30, 31, 32)], trained_params())
    setup, planned = pick(make)
    history: List[Step] = []
    params = planned[0].params
    for i, step in enumerate(planned):
        history.append(Step(params, step.z, step.a))
        answer = yield _request(history[-1], setup, fresh=i == 0)
        _judge_step(answer, setup, history, where=f"at step {i + 1} of {len(planned)}: ")
        params = answer.tensors["params_after"]
    return "three steps in a row each follow their own batch's gradient alone"


@TRAINING_STEP.check(points=1, description="starts every batch from a fresh LSTM state", note=(
    "Two steps on two batches of the same size. The sequences of one batch have nothing to do with those of "
    "the next, so each batch's predictions start from a fresh (zero) LSTM state: the loss of the second batch "
    "is compared with that, and with what a state carried over from the first batch gives."))
def independent_batches(rng: torch.Generator) -> Judgement:
    def make():
        setup = Setup(lr=_lr(rng), clip_norm=NO_CLIP)
        return setup, _truth_trajectory(setup, [batch(rng, 20, 2) for _ in range(2)], trained_params())
    setup, planned = pick(make, updates=())
    history: List[Step] = []
    params = planned[0].params
    for i, step in enumerate(planned):
        history.append(Step(params, step.z, step.a))
        answer = yield _request(history[-1], setup, fresh=i == 0)
        _judge_step(answer, setup, history, where=f"at step {i + 1} of {len(planned)}: ", check_update=False)
        params = answer.tensors["params_after"]
    return "each batch is predicted from a fresh LSTM state"


# ---------------------------------------------------------------- trains: the lesson's recipe, driven by the answer's step

TRAINS_STEPS = 200
TRAINS_SEED = 7               # data, model and batch order
TRAINS_REPORT_TOL = 0.05      # nats: how far the loss reported at a step may be from the batch's true NLL
TRAINS_LR = (3e-2, 1e-3)      # Adam's learning rate, from the first step to the last (cosine)
TRAINS_MAX_S = 60.0           # stop training (and fail) after this much time inside the answer
TRAINS_SLOW_CALL_S = 0.05     # a step slower than this makes a lesson's training crawl: warn


def trains_lr(step: int) -> float:
    """The learning rate of step ``step`` (from 0) of ``trains``: cosine from TRAINS_LR[0] to TRAINS_LR[1]."""
    high, low = TRAINS_LR
    return low + 0.5 * (high - low) * (1 + math.cos(math.pi * step / max(1, TRAINS_STEPS - 1)))


@TRAINING_STEP.check(points=1, description="a short training run with your step learns the world", slow=True, note=(
    f"The end-to-end test: the lesson's MDN-RNN is trained for {TRAINS_STEPS} steps on the course's world by "
    "**your** step, with Adam and a learning rate that decays, on one CPU thread. It passes when the loss "
    f"your step returns is within {TRAINS_REPORT_TOL} nats of the batch's true loss at every step, the held-out "
    f"NLL ends within {LEARNS_NLL_MARGIN} nats of the best possible value, and the model predicts two branches "
    "at the fork with nothing between them. It takes a few seconds."))
def trains(rng: torch.Generator) -> Judgement:
    """Train the lesson's model with the answer's step; judge what it reports and what it trained.

    Each request carries the parameters the model has (those the answer's previous step left), the
    next batch and Adam's learning rate for this step; the model and Adam's state live in the
    oracle between steps. The judge checks the loss reported at every step against the batch's
    loss under the parameters before it, computed here, and at the end evaluates the parameters
    the answer produced on held-out data, here, against the Bayes floor and at the fork.
    Fixed seeds (``rng`` is not used): the same run prints the same numbers everywhere.
    """
    seed = TRAINS_SEED
    z, a = generate_synthetic_data(400, seq_len=12, seed=seed)
    z_test, a_test = generate_synthetic_data(400, seq_len=12, seed=seed + 1)
    floor = bayes_optimal_nll(z_test, a_test)
    with cpu_threads(1):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = MDNRNN(hidden_dim=MODEL.hidden_dim, n_components=MODEL.n_components)
        before = evaluate_nll(model, z_test, a_test)
        params = flat_parameters(model).clone()
        order = torch.Generator().manual_seed(seed)
        history: List[Step] = []
        seconds = 0.0
        for step in range(TRAINS_STEPS):
            idx = torch.randint(0, z.shape[0], (64,), generator=order)
            setup = Setup(MODEL.hidden_dim, MODEL.n_components, "adam", trains_lr(step), 1.0)
            history.append(Step(params, z[idx], a[idx]))
            answer = yield _request(history[-1], setup, fresh=step == 0)
            seconds += answer.seconds
            got = _facts(answer, params.numel())
            load_flat(model, params)
            with torch.no_grad():
                out = model(z[idx, :-1], a[idx])
                right = float(mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, z[idx, 1:]))
            if abs(got - right) > TRAINS_REPORT_TOL:
                mistake = diagnose_value(got, right, value_candidates(setup, history,
                                                                      after=answer.tensors["params_after"]))
                named = (f" Likely mistake: {MISTAKES[mistake].name}. {MISTAKES[mistake].nudge}" if mistake else
                         " It matches none of the usual mistakes.")
                raise _fail(f"at training step {step + 1} of {TRAINS_STEPS}, your step returned {got:.4f} where the "
                            f"loss of its batch is {right:.4f}.{named}", mistake)
            params = answer.tensors["params_after"]
            if not bool(torch.isfinite(params).all()):
                raise _fail(f"after training step {step + 1} the parameters are not finite: the step diverged",
                            "trains_wrong_model")
            if seconds > TRAINS_MAX_S:
                raise _fail(f"training stopped after {step + 1} steps: your step took {seconds:.0f} s in all, "
                            f"{1000 * seconds / (step + 1):.0f} ms a call", "too_slow")
        load_flat(model, params)
        after = evaluate_nll(model, z_test, a_test)
        branch, middle = fork_shape(model, torch.device("cpu"))
    story = (f"training with your step moved the held-out NLL from {before:.2f} to {after:.2f} nats/step "
             f"(floor {floor:.2f})")
    if not (math.isfinite(after) and after <= floor + LEARNS_NLL_MARGIN):
        raise _fail(f"{story}; the right step gets within {LEARNS_NLL_MARGIN} nats of the floor in {TRAINS_STEPS} "
                    "steps", "trains_wrong_model")
    if branch < LEARNS_BRANCH_MIN or middle > LEARNS_GAP_MAX:
        raise _fail(f"{story}, but at the fork (z = [1, 0]) the model puts {branch:.2f} of its probability on the "
                    f"less likely side and {middle:.2f} between the branches (a right model: about 0.5 and 0)",
                    "trains_wrong_model")
    detail = (f"{TRAINS_STEPS} training steps with your step: held-out NLL {before:.2f} -> {after:.2f} nats/step "
              f"(floor {floor:.2f}); two branches at the fork")
    per_call = seconds / TRAINS_STEPS
    if per_call > TRAINS_SLOW_CALL_S:
        detail += (f". Warning: your step takes {1000 * per_call:.0f} ms a call; look for a Python loop the model "
                   "could do in one call")
    return detail
