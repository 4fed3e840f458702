"""The mistakes of the training-step exercise: their catalogue, the trusted step they are measured against,
and the diagnosis of a wrong step.

Students write ``training_step(model, optimizer, z, a, clip_norm)``: one step of teacher-forced
training on a batch of whole sequences ``z`` (B, T+1, D) and ``a`` (B, T, A). The right step:

    clear the gradients; predict z[:, 1:] from z[:, :-1] and a (a fresh LSTM state);
    loss = mdn_loss of that prediction; backpropagate; clip the gradients' global norm to clip_norm;
    take the optimiser's step; return the loss as a number.

The oracle reports what the student's step returned and the parameters after it
(:mod:`mdn_course.sandboxed.step_oracle`). Here, in the trusted process, every way of writing the
step is a :class:`Recipe` (the right one, and one per named mistake: targets not shifted, actions
a step off, gradients accumulated, clipping missing or after the step, ...), and
:func:`simulate` runs a recipe in float64 on the same parameters and batches. A wrong value is
matched against what each value mistake returns (:func:`value_candidates`, within
:data:`VALUE_TOL` nats), a wrong update against what each update mistake does to the parameters
(:func:`update_candidates`, within :data:`UPDATE_TOL` of the true update's size), and a check's
inputs are kept only where every two mistakes are told apart (:func:`value_separation`,
:func:`update_separation`). Two mistakes that no batch can tell apart (the learning rate a step
hard-codes, a fresh Adam inside the step) are recognised by the direction of the update instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..loss import mdn_nll_from_logs
from ..model import MDNRNN
from .registry import Mistake, separation_margin

__all__ = ["MISTAKES", "STEP_ARGS", "Setup", "Recipe", "RIGHT", "VARIANTS", "VALUE_MISTAKES", "UPDATE_MISTAKES",
           "STATEFUL", "Step", "Outcome", "simulate", "value_candidates", "update_candidates", "VALUE_TOL",
           "VALUE_PASS_ABS", "UPDATE_TOL", "UPDATE_PASS", "value_passes", "update_distance", "update_passes",
           "diagnose_value", "diagnose_update", "value_separation", "update_separation", "STEP_MATHS",
           "flat_parameters", "load_flat", "gradient_norm"]

STEP_ARGS = ("model", "optimizer", "z", "a", "clip_norm")
STEP_MATHS = ("theta <- theta - step(clip(grad_theta L)), with L = mean over (b, t) of -log p(z[b, t+1] | z[b, <=t], "
              "a[b, <=t]) from a fresh state, and clip(g) = g * min(1, clip_norm / |g|)")

VALUE_TOL = 0.01          # nats: a returned loss this close to a mistake's value is named as that mistake
VALUE_PASS_ABS, VALUE_PASS_REL = 2e-3, 1e-4   # a returned loss this close to the float64 truth is right
UPDATE_TOL = 0.05         # of the true update's size: an update this close to a mistake's is named as it
UPDATE_PASS = 0.01        # of the true update's size: an update this close to the float64 truth is right
PARALLEL = 0.999          # cosine above which an update points where another does
#: Learning rates a step might hard-code: an update that is plain SGD with one of them (within HAND_MATCH) is
#: named "ignores the optimiser" before anything else, and no update a check expects may look like one.
HAND_LRS = (1e-4, 3e-4, 5e-4, 1e-3, 2e-3, 3e-3, 5e-3, 1e-2, 2e-2, 3e-2, 5e-2, 0.1, 0.2, 0.3, 0.5, 1.0)
HAND_MATCH = 0.005


# ---------------------------------------------------------------- the catalogue

MISTAKES: Dict[str, Mistake] = {m.id: m for m in (
    Mistake("unshifted_targets", "targets not shifted by one step",
            "The model is shown the states up to t. Which state should it be judged on: the one it was "
            "shown, or the one that came next?",
            "the target of the prediction made at step t is z[t+1]: inputs are z[0..T-1], targets z[1..T]",
            "inputs z[:, t] for t = 0..T-1 with the actions a[:, t]; targets z[:, t+1]"),
    Mistake("actions_misaligned", "actions misaligned by a step",
            "a[:, t] is the action taken in state z[:, t]; it is what moves the world to z[:, t+1]. Is each "
            "state fed to the model next to the action taken in it?",
            "z[t+1] = f(z[t], a[t]) + noise: the pair (z[t], a[t]) predicts z[t+1]",
            "feed (z[:, t], a[:, t]) for t = 0..T-1 and predict z[:, t+1]; a has one entry fewer than z"),
    Mistake("sequence_not_split", "the whole sequence fed in, or used as the target",
            "z holds T+1 states and a holds T actions. Which T states are the model's inputs, and which T are "
            "its targets?",
            "inputs z[0..T-1] and a[0..T-1], targets z[1..T]: both T long",
            "cut z into inputs (all but the last state) and targets (all but the first)"),
    Mistake("carried_state", "LSTM state carried across batches",
            "The sequences of one batch have nothing to do with those of the last. What should the memory "
            "hold when a batch starts?",
            "every sequence is predicted from a fresh state: h[0] = c[0] = 0 for each batch",
            "call the model without a hidden state (the default starts from zeros) in every step"),
    Mistake("no_zero_grad", "gradients accumulated across steps (no zero_grad)",
            "PyTorch adds every backward pass to what the gradients already hold. What do they hold when "
            "your step begins?",
            "the update of step s uses grad L_s alone, not grad L_1 + ... + grad L_s",
            "clear the gradients at the start of every step, before the backward pass"),
    Mistake("no_gradient_at_step", "no gradient when the optimiser steps",
            "Your parameters did not move. Were there gradients for the optimiser to use when it stepped?",
            "the step needs grad L of this batch: clear, forward, loss, backward, then clip and step",
            "clear the gradients before the forward pass, not between the backward pass and the step; "
            "never skip the backward pass"),
    Mistake("step_missing", "the optimiser never steps on this batch's gradients",
            "The gradients are there after your step, but the parameters did not move with them. When does "
            "the optimiser use them?",
            "theta changes only when the optimiser steps, after the backward pass has filled the gradients",
            "call the optimiser's step after the backward pass (and after clipping), once per training step"),
    Mistake("not_clipped", "gradients not clipped before the step",
            "The update is as large as the raw gradient. Where does clip_norm come in?",
            "clip(g) = g * min(1, clip_norm / |g|) with |g| the norm of ALL gradients together, applied "
            "between the backward pass and the step",
            "clip the global gradient norm to clip_norm after the backward pass and before the step"),
    Mistake("clip_after_step", "gradients clipped after the step",
            "Your gradients are clipped when the step is over, but the update used them before. What order "
            "should clipping and stepping come in?",
            "the optimiser must step with clip(g), so clipping comes between the backward pass and the step",
            "order: clear, forward, loss, backward, clip, step"),
    Mistake("clip_by_value", "each gradient entry clipped instead of the norm",
            "Your step limits each gradient entry separately. What does clip_norm bound: each entry, or the "
            "length of the whole gradient?",
            "norm clipping rescales the whole gradient, g * min(1, clip_norm / |g|), keeping its direction",
            "clip the global norm (torch.nn.utils.clip_grad_norm_), not each value"),
    Mistake("clip_norm_ignored", "clip_norm ignored",
            "Your step clips, but not to the norm it was given. Which number bounds the gradient's norm?",
            "clip(g) = g * min(1, clip_norm / |g|) with the clip_norm argument of the step",
            "clip to the clip_norm argument, not to a constant"),
    Mistake("clip_per_parameter", "each parameter's gradient clipped on its own",
            "Your step clips every parameter tensor separately. Is clip_norm a bound on each tensor, or on "
            "the gradient of the whole model?",
            "|g| is the norm of all gradients together: sqrt(sum over every parameter of its squared gradient)",
            "clip all parameters' gradients together, in one call over model.parameters()"),
    Mistake("ignores_optimizer", "the update ignores the optimiser",
            "Your parameters move in the right direction, but not by the optimiser's step. Who should decide "
            "how far they move?",
            "theta <- theta - lr * clip(g) for the optimiser it was given (here plain SGD): the step size is "
            "the optimiser's",
            "update with the optimiser passed to the step (its step method), not by hand or with a new one"),
    Mistake("new_optimizer_each_step", "a new optimiser made in every step",
            "Every parameter moved by the same amount, as a freshly made Adam does on its first step. Which "
            "optimiser should the step use?",
            "a training run keeps ONE optimiser (its learning rate schedule and Adam's running averages live "
            "in it) from step to step",
            "use the optimizer argument; never create an optimiser inside the step"),
    Mistake("forward_without_grad", "the forward pass records no gradients",
            "The backward pass found nothing to differentiate. Is the forward pass inside torch.no_grad(), "
            "or is its result detached?",
            "the loss must be computed from the model's parameters by differentiable operations",
            "run the forward pass normally (no torch.no_grad(), no .detach() on the output or the loss)"),
    Mistake("returns_nothing", "returns nothing",
            "Training loops print and plot the loss of every step. What does your step hand back?",
            "the step returns L, the loss of the batch it trained on (before the update)",
            "return the batch's loss as a number (loss.item())"),
    Mistake("not_a_number", "returns something other than the loss",
            "What should the caller get back from one training step?",
            "the step returns L, one number: the loss of the batch before the update",
            "return the batch's loss as a Python float (loss.item()) or a 0-dimensional tensor"),
    Mistake("loss_after_step", "returns the loss after the update",
            "Your update is right, but the number you return is the loss once the parameters have moved. "
            "Which loss did the update follow?",
            "the step returns L(theta) of this batch with the parameters it started from: the loss the "
            "gradient was taken of",
            "return the loss of the forward pass the backward pass came from, not a second one after the step"),
    Mistake("in_place", "the batch changed in place",
            "Your step changes the tensors z or a it was given. The caller reuses its data for the next epoch.",
            "a training step reads the batch; it changes only the model and the optimiser",
            "slice and compute new tensors (z[:, :-1]) instead of editing z or a in place"),
    Mistake("raises", "the step raises an exception",
            "Read the error message: which line fails, and what shapes did it get?",
            "z is (B, T+1, D), a is (B, T, A); the model maps (B, T, D) and (B, T, A) to mixtures (B, T, D, K)",
            "inputs z[:, :-1] and a, targets z[:, 1:]"),
    Mistake("not_implemented", "not implemented yet",
            "Write your step in the answer cell, then run it before the checks.",
            STEP_MATHS, "clear, forward, loss, backward, clip, step, return the loss"),
    Mistake("too_slow", "too slow to train with",
            "Training calls the step thousands of times. Is there a Python loop over the batch or the time "
            "steps that one call of the model would do?",
            "the model takes the whole batch and every time step in one call",
            "call the model once per step on (B, T) tensors"),
    Mistake("trains_wrong_model", "training with it does not learn the world",
            "The faster checks above say what your step does; fix those first.",
            STEP_MATHS, "clear, forward, loss, backward, clip, step, return the loss"),
)}


# ---------------------------------------------------------------- the step, and the ways to get it wrong

@dataclass(frozen=True)
class Setup:
    """What the judge tells the oracle about one step: the model's size, the optimiser, its learning rate,
    the clip norm the step is called with."""
    hidden_dim: int = 32
    n_components: int = 3
    optimizer: str = "sgd"
    lr: float = 0.1
    clip_norm: float = 1.0

    def options(self, fresh: bool) -> Dict[str, object]:
        return {"hidden_dim": self.hidden_dim, "n_components": self.n_components, "optimizer": self.optimizer,
                "lr": float(self.lr), "clip_norm": float(self.clip_norm), "fresh": bool(fresh)}


@dataclass(frozen=True)
class Recipe:
    """One way to write the step; the defaults are the right one. ``alignment``: which slices are inputs,
    actions and targets; ``zero_grad``: when the gradients are cleared (``start``, ``never`` or
    ``before_step``, which leaves the step none); ``clip``: ``norm`` (to clip_norm), ``none``,
    ``after_step``, ``value``, ``one`` (to 1.0) or ``per_parameter``; ``step``: whether the optimiser
    steps; ``carry_state``: whether the LSTM state is carried into the next batch (detached)."""
    alignment: str = "right"
    zero_grad: str = "start"
    clip: str = "norm"
    step: bool = True
    carry_state: bool = False

    @property
    def stateful(self) -> bool:
        """Whether the step depends on earlier steps (through the gradients or the LSTM state)."""
        return self.zero_grad == "never" or self.carry_state


RIGHT = Recipe()
#: Every named mistake that shows in a step's facts, and the recipes that make it (some have variants).
VARIANTS: Dict[str, Tuple[Recipe, ...]] = {
    "unshifted_targets": (Recipe(alignment="unshifted"), Recipe(alignment="both_shifted")),
    "actions_misaligned": tuple(Recipe(alignment=w) for w in ("late_pad", "late_trim", "early_pad", "early_trim")),
    "carried_state": (Recipe(carry_state=True),),
    "no_zero_grad": (Recipe(zero_grad="never"),),
    "no_gradient_at_step": (Recipe(zero_grad="before_step"),),
    "step_missing": (Recipe(step=False),),
    "not_clipped": (Recipe(clip="none"),),
    "clip_after_step": (Recipe(clip="after_step"),),
    "clip_by_value": (Recipe(clip="value"),),
    "clip_norm_ignored": (Recipe(clip="one"),),
    "clip_per_parameter": (Recipe(clip="per_parameter"),),
}
VALUE_MISTAKES = ("unshifted_targets", "actions_misaligned", "carried_state", "loss_after_step")   # wrong loss
UPDATE_MISTAKES = tuple(m for m in VARIANTS if m not in VALUE_MISTAKES)   # the loss is right, the update not
STATEFUL = frozenset(m for m, recipes in VARIANTS.items() if any(r.stateful for r in recipes))


def _align(alignment: str, z: torch.Tensor, a: torch.Tensor):
    """(inputs, actions, targets) of one way of cutting the batch (``right``: z[:, :-1], a, z[:, 1:])."""
    zeros = torch.zeros_like(a[:, :1])
    return {
        "right": (z[:, :-1], a, z[:, 1:]),
        "unshifted": (z[:, :-1], a, z[:, :-1]),                     # judged on the state it was shown
        "both_shifted": (z[:, 1:], a, z[:, 1:]),                    # shown z[t+1], judged on z[t+1]
        "late_pad": (z[:, :-1], torch.cat([zeros, a[:, :-1]], 1), z[:, 1:]),   # z[t] with a[t-1]
        "late_trim": (z[:, 1:-1], a[:, :-1], z[:, 2:]),
        "early_pad": (z[:, :-1], torch.cat([a[:, 1:], zeros], 1), z[:, 1:]),   # z[t] with a[t+1]
        "early_trim": (z[:, :-2], a[:, 1:], z[:, 1:-1]),
    }[alignment]


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    """The parameters of ``model`` as one flat tensor (detached, on its device)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def load_flat(model: torch.nn.Module, flat: torch.Tensor) -> None:
    """Copy the flat vector ``flat`` into ``model``'s parameters, in place (their gradients stay)."""
    with torch.no_grad():
        offset = 0
        for p in model.parameters():
            p.copy_(flat[offset:offset + p.numel()].view_as(p).to(p))
            offset += p.numel()
    if offset != flat.numel():
        raise ValueError(f"{flat.numel()} numbers for a model of {offset} parameters")


@lru_cache(maxsize=4)
def _model64(hidden_dim: int, n_components: int) -> MDNRNN:
    """A float64 model of this size to load parameters into (one per process: the judges run one at a time)."""
    with torch.random.fork_rng(devices=[]):
        return MDNRNN(hidden_dim=hidden_dim, n_components=n_components).double()


@dataclass(frozen=True, eq=False)
class Step:
    """One step of a check as it happened: the parameters before it (what the judge sent) and its batch.
    ``memo`` keeps its float64 loss and gradient once computed (every recipe shares them)."""
    params: torch.Tensor     # flat, as sent
    z: torch.Tensor
    a: torch.Tensor
    memo: dict = field(default_factory=dict, repr=False)


@dataclass
class Outcome:
    """What one recipe does on the last step of a history (float64): the loss it returns, how far it moves
    the parameters, and the gradients it leaves on them (None where it leaves none at all)."""
    value: float
    delta: torch.Tensor
    grads: Optional[torch.Tensor]


def _gradient(setup: Setup, step: Step) -> Tuple[float, List[torch.Tensor]]:
    """The right forward pass's loss on ``step`` and its gradient, one tensor per parameter (float64)."""
    key = (setup.hidden_dim, setup.n_components)
    if key not in step.memo:
        model = _model64(*key)
        load_flat(model, step.params.double())
        model.zero_grad(set_to_none=True)
        out = model(step.z[:, :-1].double(), step.a.double())
        loss = mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, step.z[:, 1:].double())
        loss.backward()
        step.memo[key] = (float(loss.detach()), [p.grad.detach().clone() for p in model.parameters()])
        model.zero_grad(set_to_none=True)
    return step.memo[key]


def gradient_norm(setup: Setup, step: Step) -> float:
    """The norm of the whole gradient of the right loss on ``step``, before any clipping."""
    return math.sqrt(sum(float((g ** 2).sum()) for g in _gradient(setup, step)[1]))


def _after_backward(recipe: Recipe, params: List[torch.Tensor], optimizer, clip_norm: float) -> None:
    """What the recipe does between its backward pass and its end: clear, clip, step, in its order."""
    if recipe.zero_grad == "before_step":
        optimizer.zero_grad(set_to_none=True)
    if recipe.clip == "norm":
        torch.nn.utils.clip_grad_norm_(params, clip_norm)
    elif recipe.clip == "one":
        torch.nn.utils.clip_grad_norm_(params, 1.0)
    elif recipe.clip == "value":
        torch.nn.utils.clip_grad_value_(params, clip_norm)
    elif recipe.clip == "per_parameter":
        for p in params:
            torch.nn.utils.clip_grad_norm_(p, clip_norm)
    if recipe.step:
        optimizer.step()
    if recipe.clip == "after_step":
        torch.nn.utils.clip_grad_norm_(params, clip_norm)


def simulate(recipe: Recipe, setup: Setup, history: Sequence[Step]) -> Outcome:
    """What ``recipe`` does on the last step of ``history`` (plain SGD, float64), when every step started from
    the parameters the judge sent: its loss, its update and the gradients it leaves.

    The forward and backward pass are the right ones (recipes that cut the batch otherwise, or carry
    the LSTM state, change the loss: :func:`value_candidates`); everything after the backward pass is
    the recipe's own, done with torch's own clipping and ``torch.optim.SGD`` on copies of the
    parameters. A recipe that never clears the gradients replays the whole history: each backward
    pass adds to what the previous step left.
    """
    if recipe.alignment != "right" or recipe.carry_state or setup.optimizer != "sgd":
        raise ValueError("simulate replays SGD steps after the right forward pass; see value_candidates")
    shapes = [p.shape for p in _model64(setup.hidden_dim, setup.n_components).parameters()]
    stored: Optional[List[Optional[torch.Tensor]]] = None
    value, params = math.nan, []
    for step in (history if recipe.stateful else history[-1:]):
        value, grads = _gradient(setup, step)
        params = [t.view(shape).clone().requires_grad_(True)
                  for t, shape in zip(step.params.double().split([math.prod(s) for s in shapes]), shapes)]
        for p, g, kept in zip(params, grads, stored or [None] * len(params)):
            p.grad = g.clone() if kept is None else kept + g    # backward adds to what is stored
        _after_backward(recipe, params, torch.optim.SGD(params, lr=setup.lr), setup.clip_norm)
        stored = [p.grad for p in params] if recipe.zero_grad == "never" else None
    before = history[-1].params.double()
    grads = None if all(p.grad is None for p in params) else torch.cat(
        [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])
    return Outcome(value, torch.cat([p.detach().reshape(-1) for p in params]) - before, grads)


def _forward_value(recipe: Recipe, setup: Setup, history: Sequence[Step]) -> float:
    """The loss ``recipe`` returns on the last step of ``history`` (forward passes only, float64)."""
    model = _model64(setup.hidden_dim, setup.n_components)
    hidden, value = None, math.nan
    with torch.no_grad():
        for step in (history if recipe.carry_state else history[-1:]):
            load_flat(model, step.params.double())
            inputs, actions, targets = _align(recipe.alignment, step.z.double(), step.a.double())
            out = model(inputs, actions, hidden)
            value = float(mdn_nll_from_logs(out.log_pi, out.mu, out.log_sigma, targets))
            hidden = out.hidden if recipe.carry_state else None
    return value


def value_candidates(setup: Setup, history: Sequence[Step], among: Optional[Iterable[str]] = None,
                     after: Optional[torch.Tensor] = None) -> Dict[str, List[float]]:
    """What each value mistake (of ``among``) returns on the last step of ``history``; ``after`` are the
    parameters after that step (for the loss measured once the parameters have moved).

    A carried state exists only from a check's second batch on, and only while the batches have one
    size (the first starts from whatever the answer kept; a state kept from a batch of another size
    makes the model raise instead, which names the mistake by itself)."""
    chosen = VALUE_MISTAKES if among is None else [m for m in VALUE_MISTAKES if m in set(among)]
    out = {}
    for mistake in chosen:
        if mistake == "loss_after_step":
            if after is not None:
                last = history[-1]
                out[mistake] = [_forward_value(RIGHT, setup, [Step(after, last.z, last.a)])]
        elif mistake == "carried_state":
            if len(history) >= 2 and len({s.z.shape[0] for s in history}) == 1:
                out[mistake] = [_forward_value(r, setup, history) for r in VARIANTS[mistake]]
        else:
            out[mistake] = [_forward_value(r, setup, history) for r in VARIANTS[mistake]]
    return out


def update_candidates(setup: Setup, history: Sequence[Step],
                      among: Optional[Iterable[str]] = None) -> Dict[str, List[Outcome]]:
    """What each update mistake (of ``among``) does on the last step of ``history`` (a stateful one only from
    the second step on: before, it does what the right step does)."""
    chosen = UPDATE_MISTAKES if among is None else [m for m in UPDATE_MISTAKES if m in set(among)]
    return {m: [simulate(r, setup, history) for r in VARIANTS[m]] for m in chosen
            if m not in STATEFUL or len(history) >= 2}


# ---------------------------------------------------------------- deciding

def value_passes(got: Optional[float], expected: float) -> bool:
    return got is not None and math.isfinite(got) and abs(got - expected) <= VALUE_PASS_ABS + VALUE_PASS_REL * abs(expected)


def _grads_apart(grads: Optional[torch.Tensor], other: Optional[torch.Tensor]) -> float:
    """How far the gradients left by a step are from ``other``'s, as a share of ``other``'s size; infinite when
    one step left gradients and the other none."""
    if grads is None or other is None:
        return 0.0 if grads is None and other is None else math.inf
    size = max(float(torch.linalg.vector_norm(other)), 1e-12)
    return float(torch.linalg.vector_norm(grads.double() - other)) / size


def update_distance(delta: torch.Tensor, other: Outcome, scale: float) -> float:
    """How far an update is from ``other``'s, as a share of ``scale`` (the true update's size)."""
    return float(torch.linalg.vector_norm(delta.double() - other.delta)) / scale


def _size(outcome: Outcome) -> float:
    return max(float(torch.linalg.vector_norm(outcome.delta)), 1e-12)


def update_passes(delta: torch.Tensor, truth: Outcome) -> bool:
    return bool(torch.isfinite(delta).all()) and \
        float(torch.linalg.vector_norm(delta.double() - truth.delta)) <= UPDATE_PASS * _size(truth)


def _cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    nx, ny = float(torch.linalg.vector_norm(x)), float(torch.linalg.vector_norm(y))
    return float(torch.dot(x.double(), y.double())) / (nx * ny) if nx > 0 and ny > 0 else 0.0


def diagnose_value(got: float, expected: float, candidates: Dict[str, List[float]]) -> Optional[str]:
    """The one value mistake whose value ``got`` is within VALUE_TOL of, else None."""
    near = {m for m, values in candidates.items() if any(abs(got - v) <= VALUE_TOL for v in values)}
    return near.pop() if len(near) == 1 else None


def _hand_lr(delta: torch.Tensor, truth: Outcome, lr: float) -> Optional[float]:
    """The learning rate of :data:`HAND_LRS` with which plain SGD makes the update ``delta`` (along the true
    update, whose learning rate is ``lr``), if there is one."""
    length = float(torch.linalg.vector_norm(delta))
    if length == 0 or _cosine(delta, truth.delta) <= PARALLEL:
        return None
    implied = lr * length / _size(truth)
    return next((hand for hand in HAND_LRS if abs(implied / hand - 1) <= HAND_MATCH), None)


def diagnose_update(delta: torch.Tensor, grads: Optional[torch.Tensor], truth: Outcome,
                    candidates: Dict[str, List[Outcome]], lr: float) -> Optional[str]:
    """The update mistake ``delta`` (with the gradients it left, ``grads``) shows, else None.

    An update that is plain SGD with a learning rate a step might hard-code (:func:`_hand_lr`) ignores
    the optimiser whatever else it matches (the checks' inputs keep every other update clear of
    those). Then the mistakes whose update is known exactly: those within UPDATE_TOL of ``delta``, and
    if that leaves several (a step that does not move, with or without gradients; not clipped or
    clipped after the step, which move alike), the one that also left the same gradients.
    A step that cleared its gradients at the end leaves none to compare, so not clipped and
    clipped after the step stay together; it is named "not clipped", whose message names both.
    Then, for an update no exact mistake explains, its direction: along the true update but of
    another length (the step size is not the optimiser's), or the same size on every parameter
    (a fresh Adam's first step)."""
    if _hand_lr(delta, truth, lr) is not None:
        return "ignores_optimizer"
    scale = _size(truth)
    near = {m for m, outcomes in candidates.items() if any(update_distance(delta, o, scale) <= UPDATE_TOL
                                                           for o in outcomes)}
    if len(near) > 1:
        same = {m for m in near if any(update_distance(delta, o, scale) <= UPDATE_TOL
                                       and _grads_apart(grads, o.grads) <= UPDATE_TOL for o in candidates[m])}
        near = same or near
    if near == {"not_clipped", "clip_after_step"}:
        return "not_clipped"
    if len(near) == 1:
        return near.pop()
    if near:
        return None
    size = float(torch.linalg.vector_norm(delta))
    if size == 0 or not math.isfinite(size):
        return None
    if _cosine(delta, truth.delta) > PARALLEL:
        return "ignores_optimizer"
    if truth.grads is not None and _cosine(delta, -torch.sign(truth.grads)) > PARALLEL:
        return "new_optimizer_each_step"
    return None


def value_separation(expected: float, candidates: Dict[str, List[float]]) -> float:
    """By how many nats every value diagnosis is told apart on these inputs (positive: all of them).

    As for the loss exercise: each mistake's value is within half the pass tolerance of the truth
    (it makes no difference here) or more than the pass tolerance plus 2 * VALUE_TOL away, and the
    values of different mistakes are more than 2 * VALUE_TOL apart."""
    finite = {m: [v for v in values if math.isfinite(v)] for m, values in candidates.items()}
    margin, _ = separation_margin(finite, lambda v: abs(v - expected), lambda v1, v2: abs(v1 - v2),
                                  VALUE_PASS_ABS + VALUE_PASS_REL * abs(expected), VALUE_TOL)
    if any(not math.isfinite(v) for values in candidates.values() for v in values):
        margin = min(margin, -1.0)     # a mistake that gives no number here cannot be named by its value
    return margin


def update_separation(truth: Outcome, candidates: Dict[str, List[Outcome]], lr: float) -> float:
    """How far apart (in shares of the true update's size) every update diagnosis is on these inputs.

    Each mistake's update is the truth's (within half the pass tolerance: no difference here) or
    more than the pass tolerance plus 2 * UPDATE_TOL from it, and two different mistakes either move
    the parameters more than 2 * UPDATE_TOL apart or leave gradients that far apart (or one leaves
    gradients and the other none). ``lr`` is the optimiser's learning rate (:func:`_hand_lr_margin`)."""
    scale = _size(truth)
    margin, distinct = separation_margin(
        candidates, lambda o: update_distance(o.delta, truth, scale),
        lambda o1, o2: max(update_distance(o1.delta, o2, scale), _grads_apart(o1.grads, o2.grads)),
        UPDATE_PASS, UPDATE_TOL)
    return min(margin, _hand_lr_margin(lr, truth, [o for _, o in distinct]))


def _hand_lr_margin(lr: float, truth: Outcome, outcomes: Sequence[Outcome]) -> float:
    """How far every update along the true one (the truth's, and each such mistake's) is from the update of
    plain SGD with a learning rate a step might hard-code (:data:`HAND_LRS`), as a share of its size, beyond
    twice HAND_MATCH: a step that hard-codes one is then never taken for the right step or another mistake."""
    margin = math.inf
    size = _size(truth)
    for o in [truth, *outcomes]:
        length = float(torch.linalg.vector_norm(o.delta))
        if length == 0 or _cosine(o.delta, truth.delta) <= PARALLEL:
            continue
        implied = lr * length / size     # the learning rate plain SGD would need to make this update
        margin = min(margin, min(abs(implied / hand - 1) for hand in HAND_LRS) - 2 * HAND_MATCH)
    return margin
