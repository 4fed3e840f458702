"""The one catalogue of wrong answers to the training-step exercise, for every test that needs one.

Each wrong step is one a student might write. ``EXPECTED`` pairs each with the checks it must fail
and the mistake each must name (``tests/test_step_checks.py`` proves it; the hint ladder's tests
and the grader's corpus use the same steps). A step's ``__name__`` is ``training_step`` where the
checks look a function up by name, so each is written through :func:`step`.
"""
import torch

from mdn_course import mdn_loss
from mdn_course.exercise import TRAINING_STEP

CHECKS = list(TRAINING_STEP.checks)


def correct(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    out = model(z[:, :-1], a)
    loss = mdn_loss(out.pi, out.mu, out.sigma, z[:, 1:])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def _train(model, optimizer, loss, clip_norm):
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def _loss(model, inputs, actions, targets, hidden=None):
    out = model(inputs, actions, hidden)
    return mdn_loss(out.pi, out.mu, out.sigma, targets), out


# ---------------------------------------------------------------- wrong steps, one per mistake (and variants)

def unshifted_targets(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    return _train(model, optimizer, _loss(model, z[:, :-1], a, z[:, :-1])[0], clip_norm)


def both_shifted(model, optimizer, z, a, clip_norm=1.0):   # shown z[t+1], judged on z[t+1]
    optimizer.zero_grad()
    return _train(model, optimizer, _loss(model, z[:, 1:], a, z[:, 1:])[0], clip_norm)


def previous_action(model, optimizer, z, a, clip_norm=1.0):   # the action that led to z[t]
    optimizer.zero_grad()
    before = torch.cat([torch.zeros_like(a[:, :1]), a[:, :-1]], dim=1)
    return _train(model, optimizer, _loss(model, z[:, :-1], before, z[:, 1:])[0], clip_norm)


def previous_action_trimmed(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    return _train(model, optimizer, _loss(model, z[:, 1:-1], a[:, :-1], z[:, 2:])[0], clip_norm)


def next_action(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    return _train(model, optimizer, _loss(model, z[:, :-2], a[:, 1:], z[:, 1:-1])[0], clip_norm)


def whole_sequence_input(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    return _train(model, optimizer, _loss(model, z, a, z[:, 1:])[0], clip_norm)


def whole_sequence_target(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    return _train(model, optimizer, _loss(model, z[:, :-1], a, z)[0], clip_norm)


_STATE = {"hidden": None}


def carried_state(model, optimizer, z, a, clip_norm=1.0):   # "a stateful RNN": the memory goes on
    optimizer.zero_grad()
    loss, out = _loss(model, z[:, :-1], a, z[:, 1:], _STATE["hidden"])
    _STATE["hidden"] = tuple(h.detach() for h in out.hidden)
    return _train(model, optimizer, loss, clip_norm)


_ATTACHED = {"hidden": None}


def carried_state_attached(model, optimizer, z, a, clip_norm=1.0):   # the same, without detaching the state
    optimizer.zero_grad()
    loss, out = _loss(model, z[:, :-1], a, z[:, 1:], _ATTACHED["hidden"])
    _ATTACHED["hidden"] = out.hidden
    return _train(model, optimizer, loss, clip_norm)


def no_zero_grad(model, optimizer, z, a, clip_norm=1.0):
    return _train(model, optimizer, _loss(model, z[:, :-1], a, z[:, 1:])[0], clip_norm)


def zero_grad_before_step(model, optimizer, z, a, clip_norm=1.0):   # cleared the wrong gradients
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    optimizer.zero_grad()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def no_backward(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def no_step(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    return loss.item()


def step_before_backward(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    optimizer.step()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    return loss.item()


def not_clipped(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    optimizer.step()
    return loss.item()


def clip_before_backward(model, optimizer, z, a, clip_norm=1.0):   # clips the (cleared) gradients: nothing
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    loss.backward()
    optimizer.step()
    return loss.item()


def clip_after_step(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    optimizer.step()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    return loss.item()


def clip_by_value(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    torch.nn.utils.clip_grad_value_(model.parameters(), clip_norm)
    optimizer.step()
    return loss.item()


def clip_to_one(model, optimizer, z, a, clip_norm=1.0):   # the lesson's 1.0, hard-coded
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
    return loss.item()


def clip_each_parameter(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    for p in model.parameters():
        torch.nn.utils.clip_grad_norm_(p, clip_norm)
    optimizer.step()
    return loss.item()


def manual_update(model, optimizer, z, a, clip_norm=1.0):   # SGD by hand, with a learning rate of its own
    model.zero_grad()
    loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.01 * p.grad
    return loss.item()


def new_adam_each_step(model, optimizer, z, a, clip_norm=1.0):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return correct(model, optimizer, z, a, clip_norm)


def forward_without_grad(model, optimizer, z, a, clip_norm=1.0):
    optimizer.zero_grad()
    with torch.no_grad():
        loss = _loss(model, z[:, :-1], a, z[:, 1:])[0]
    return _train(model, optimizer, loss, clip_norm)


def returns_nothing(model, optimizer, z, a, clip_norm=1.0):
    correct(model, optimizer, z, a, clip_norm)


def returns_output(model, optimizer, z, a, clip_norm=1.0):
    correct(model, optimizer, z, a, clip_norm)
    return model(z[:, :-1], a)


def returns_loss_after_step(model, optimizer, z, a, clip_norm=1.0):
    correct(model, optimizer, z, a, clip_norm)
    with torch.no_grad():
        return _loss(model, z[:, :-1], a, z[:, 1:])[0].item()


def in_place_batch(model, optimizer, z, a, clip_norm=1.0):   # "normalises" the actions in place
    a /= a.abs().max()
    return correct(model, optimizer, z, a, clip_norm)


def not_implemented(model, optimizer, z, a, clip_norm=1.0):
    raise NotImplementedError("write the step")


def forget_states():
    """Empty what the state-carrying steps keep (a fresh kernel or sandbox, where the checks start)."""
    _STATE["hidden"] = _ATTACHED["hidden"] = None


def step(fn):
    """``fn`` under the name the exercise's checks look functions up by."""
    fn.__name__ = fn.__qualname__ = "training_step"
    return fn


ALL = CHECKS
VALUE_AND_UPDATE = ["aligned", "updates", "clips", "fresh_gradients", "independent_batches", "trains"]
UPDATES = ["updates", "clips", "fresh_gradients", "trains"]


def fails(names, mistake):
    return {n: mistake for n in names}


# trains (Adam, clip 1.0) learns the world whether or not a step clips, or clears its gradients: those mistakes
# fail only the fast checks that name them. A step that does not move the parameters, or moves them by its own
# rule, does not learn it.
EXPECTED = [
    (unshifted_targets, fails(VALUE_AND_UPDATE, "unshifted_targets")),
    (both_shifted, fails(VALUE_AND_UPDATE, "unshifted_targets")),
    (previous_action, fails(VALUE_AND_UPDATE, "actions_misaligned")),
    (previous_action_trimmed, fails(VALUE_AND_UPDATE, "actions_misaligned")),
    (next_action, fails(VALUE_AND_UPDATE, "actions_misaligned")),
    (whole_sequence_input, fails(ALL, "sequence_not_split")),
    (whole_sequence_target, fails(ALL, "sequence_not_split")),
    # from a fresh state, the first step is right; every later call meets the state of a batch of another
    # size (the checks see to that), or of the same size in independent_batches
    (carried_state, {**fails(VALUE_AND_UPDATE, "carried_state")}),
    (carried_state_attached, {**fails(VALUE_AND_UPDATE, "carried_state")}),
    (no_zero_grad, fails(["fresh_gradients"], "no_zero_grad")),
    (zero_grad_before_step, {**fails(UPDATES[:3], "no_gradient_at_step"), "trains": "trains_wrong_model"}),
    (no_backward, {**fails(UPDATES[:3], "no_gradient_at_step"), "trains": "trains_wrong_model"}),
    (no_step, {**fails(UPDATES[:3], "step_missing"), "trains": "trains_wrong_model"}),
    (step_before_backward, {**fails(UPDATES[:3], "step_missing"), "trains": "trains_wrong_model"}),
    (not_clipped, fails(["clips"], "not_clipped")),
    (clip_before_backward, fails(["clips"], "not_clipped")),
    (clip_after_step, fails(["clips"], "clip_after_step")),
    (clip_by_value, fails(["clips"], "clip_by_value")),
    (clip_to_one, fails(["updates", "clips", "fresh_gradients"], "clip_norm_ignored")),
    (clip_each_parameter, fails(["clips"], "clip_per_parameter")),
    (manual_update, {**fails(UPDATES[:3], "ignores_optimizer"), "trains": "trains_wrong_model"}),
    (new_adam_each_step, {**fails(UPDATES[:3], "new_optimizer_each_step"), "trains": "trains_wrong_model"}),
    (returns_loss_after_step, fails(VALUE_AND_UPDATE, "loss_after_step")),
    (forward_without_grad, fails(ALL, "forward_without_grad")),
    (returns_nothing, fails(ALL, "returns_nothing")),
    (returns_output, fails(ALL, "not_a_number")),
    (in_place_batch, fails(ALL, "in_place")),
    (not_implemented, fails(ALL, "not_implemented")),
]
