"""The training-step exercise's oracle: hand the student's step a real model and optimiser, report facts.

Students write ``training_step(model, optimizer, z, a, clip_norm)``. A judge cannot send a model
over the wire, so it sends what defines one: the parameters as one flat vector (``params``), the
batch (``z``, ``a``) and ``options`` (the model's size, which optimiser with which learning rate,
the clipping norm, and ``fresh``). :class:`TrainingStepCaller` builds the model (the library's
own ``MDNRNN``, from ``mdn_rnn.py`` beside this file) and the optimiser when ``fresh`` is set,
keeps both between requests otherwise (so gradients left on the parameters, the optimiser's
state and whatever the student's step keeps itself carry over from one step to the next, as in
a training loop), loads ``params`` into the model in place, calls the step on copies of the
batch, and reports:

* what the step returned (a number, a tensor, something else, or the exception it raised);
* ``params_after``: the flat parameters after the call;
* ``grads_after``: the flat gradients left on them (zeros where a parameter has none) and
  ``grads_present``: 1 or 0 per parameter tensor, whether it has a gradient at all;
* which of ``z`` and ``a`` the step changed in place.

It decides nothing: the judge compares these facts with its own computation of the step,
outside the sandbox. Standard library and torch only, like every file of this folder.
"""
from __future__ import annotations

import importlib
import math
import time
from typing import Callable, Optional, Tuple

import torch


def _sibling(name: str):
    """The module ``name`` of this folder (see ``oracle._sibling``)."""
    return importlib.import_module(f"{__package__}.{name}" if __package__ else name)


oracle = _sibling("oracle")
mdn_rnn = _sibling("mdn_rnn")

OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}
MAX_HIDDEN, MAX_COMPONENTS = 256, 16    # a request may ask for no bigger model than this


def flat_parameters(model: torch.nn.Module) -> torch.Tensor:
    """Every parameter of ``model`` in order, as one flat float tensor on the CPU."""
    return torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()])


def _read_options(options) -> Tuple[int, int, str, float, float, bool]:
    """The request's (hidden_dim, n_components, optimizer, lr, clip_norm, fresh), or ProtocolError."""
    try:
        hidden, components = int(options["hidden_dim"]), int(options["n_components"])
        name, lr, clip = str(options["optimizer"]), float(options["lr"]), float(options["clip_norm"])
    except (KeyError, TypeError, ValueError) as exc:
        raise oracle.ProtocolError(f"a training-step request needs hidden_dim, n_components, optimizer, lr and "
                                   f"clip_norm ({exc})") from None
    if not (1 <= hidden <= MAX_HIDDEN and 1 <= components <= MAX_COMPONENTS and name in OPTIMIZERS
            and math.isfinite(lr) and lr >= 0 and math.isfinite(clip) and clip > 0):
        raise oracle.ProtocolError("a training-step request's model, optimiser, lr or clip_norm is out of range")
    return hidden, components, name, lr, clip, bool(options.get("fresh", False))


class TrainingStepCaller:
    """One oracle of the training-step exercise: its model and optimiser live from one request to the next."""

    def __init__(self, device: Optional[torch.device] = None):
        self.device = device if device is not None else torch.device("cpu")
        self.model: Optional[torch.nn.Module] = None
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self._config: Optional[Tuple[int, int, str]] = None
        for make in OPTIMIZERS.values():
            # the first optimiser a process makes imports half of torch (seconds): here, before the answer
            # runs, rather than inside the first call, which has a time limit
            make([torch.zeros(1, requires_grad=True)], lr=0.1)

    def _build(self, hidden: int, components: int, name: str, lr: float) -> None:
        with torch.random.fork_rng(devices=[]):   # the initial values are overwritten: leave the caller's RNG alone
            model = mdn_rnn.MDNRNN(hidden_dim=hidden, n_components=components)
        self.model = model.to(self.device)
        self.optimizer = OPTIMIZERS[name](self.model.parameters(), lr=lr)
        self._config = (hidden, components, name)

    def __call__(self, answer_fn: Callable, request: "oracle.Request") -> "oracle.Answer":
        hidden, components, name, lr, clip, fresh = _read_options(request.options)
        if fresh or self.model is None or self._config != (hidden, components, name):
            self._build(hidden, components, name, lr)
        model, optimizer = self.model, self.optimizer
        params = list(model.parameters())
        flat = request.args["params"]
        if flat.dim() != 1 or flat.numel() != sum(p.numel() for p in params):
            raise oracle.ProtocolError(f"params must be a flat vector of {sum(p.numel() for p in params)} numbers")
        with torch.no_grad():
            offset = 0
            for p in params:
                p.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()
        for group in optimizer.param_groups:   # the judge's schedule: this step's learning rate
            group["lr"] = lr
        names = ("z", "a")
        given = {n: request.args[n].detach().clone().to(self.device) for n in names}
        pristine = {n: request.args[n].detach().clone().to(self.device) for n in names}
        start = time.perf_counter()
        try:
            result = answer_fn(model, optimizer, given["z"], given["a"], clip)
        except NotImplementedError as exc:
            return oracle.Answer("not_implemented", error=oracle.shorten(f"NotImplementedError: {exc}"),
                                 seconds=time.perf_counter() - start)
        except Exception as exc:  # noqa: BLE001 - whatever the step raises is a fact to report
            return oracle.Answer("raised", error=oracle.shorten(f"{type(exc).__name__}: {exc}"),
                                 seconds=time.perf_counter() - start, mutated=self._mutated(given, pristine))
        seconds = time.perf_counter() - start
        answer = self._describe(result)
        answer.seconds, answer.mutated = seconds, self._mutated(given, pristine)
        answer.tensors = {"params_after": flat_parameters(model),
                          "grads_after": torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p))
                                                    .detach().reshape(-1).cpu() for p in model.parameters()]),
                          "grads_present": torch.tensor([float(p.grad is not None) for p in model.parameters()])}
        return answer

    @staticmethod
    def _mutated(given, pristine):
        return [n for n in given if not oracle._same(pristine[n], given[n].detach())]

    @staticmethod
    def _describe(result) -> "oracle.Answer":
        """The facts of what the step returned: its value when it is a number or a 1-element float tensor."""
        if type(result) in (float, int):   # bool, and subclasses that could lie, are "something else"
            return oracle.Answer("other", type_name=type(result).__name__, value=float(result))
        if type(result) is not torch.Tensor:
            return oracle.Answer("other", type_name=oracle.shorten(type(result).__name__))
        answer = oracle.Answer("tensor", type_name="Tensor", shape=list(result.shape),
                               dtype=str(result.dtype).replace("torch.", ""), requires_grad=bool(result.requires_grad))
        if result.numel() == 1 and result.is_floating_point():
            answer.value = float(result.detach().double().cpu().reshape(()).item())
        return answer
