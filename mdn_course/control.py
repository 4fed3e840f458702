"""C, the controller, and the two places it can act: the real world and the memory's dream.

World Models' controller is one linear layer from the latent state and the memory's hidden
state to the action, ``a = tanh(W [z, h] + b)``: so few numbers that an evolution strategy
can train it from episode scores alone (``cma_training.py``). This module has what such a
training needs, batched so that a whole population of candidate controllers, each playing
several episodes, moves forward in one tensor operation per time step:

* ``Task``: a reward on the state, a crash rule that ends an episode, a length and a start.
* ``ForkWorld``: the real environment (the lesson world, or the late fork of ``memory_world.py``),
  stepping with ``data.world_step``, the same rules the memory's training data came from.
* ``LinearController``: the parameter layout of the paper's controller, for many candidates at once.
* ``real_rollouts`` and ``dream_rollouts``: play every candidate's episodes in the world, or in
  the memory's dream at a temperature, with the controller in the loop.

The memory can be any ``MDNRNN`` (any latent, action and hidden size): the controller reads
``h`` from its LSTM state, and the dream samples its mixture with the temperature rule of
``dream.py``. In the real world the memory runs alongside on the real states, only to give ``h``.
For frames (render, encode with a VAE, then M and C) only the observation changes: ``real_rollouts``
takes an ``observe`` function from the world's true state to the latent the memory reads.

Shapes: P candidates, E episodes each, T steps, D latent, A action, H hidden size.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Optional, Sequence, Union

import torch

from .data import WORLD, WorldSpec, world_step

__all__ = ["Task", "cliff_task", "fork_road_task", "ForkWorld", "LinearController", "Rollouts", "real_rollouts",
           "dream_rollouts", "start_states", "tempered_sample"]

StateFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Task:
    """What the controller is for: a reward on the state, a crash rule and an episode's shape.

    ``reward(z)`` (N, D) -> (N,) is paid after every step for the state reached; ``crashed(z)``
    (N, D) -> (N,) bool ends the episode there (that step's reward, e.g. a penalty, still counts;
    no reward after it). Episodes last ``steps`` steps and start at ``start`` plus Gaussian noise
    of ``start_std``. The same functions score real states and dreamed ones.
    """

    name: str
    steps: int
    reward: StateFn
    crashed: Optional[StateFn] = None
    start: Sequence[float] = (0.0, 0.0)
    start_std: float = 0.1
    description: str = ""

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"a task needs at least one step, got steps={self.steps}")
        if self.start_std < 0:
            raise ValueError(f"start_std must be >= 0, got {self.start_std}")

    def read_through(self, readout: StateFn, what: str = "a read-out") -> "Task":
        """The same task for a world the controller only sees as latents: reward and crash rule applied
        to ``readout(latent)`` (N, D) instead of the state. A dream of V's latents can score only this
        way. Start states and length stay the task's (the dream's starts are observed real states)."""
        reward, crashed = self.reward, self.crashed
        return replace(self, name=f"{self.name}, read through {what}",
                       reward=lambda u: reward(readout(u)),
                       crashed=None if crashed is None else (lambda u: crashed(readout(u))),
                       description=f"{self.description} (the state read from the latent by {what})")


def cliff_task(edge: float = 1.0, fall_penalty: float = 5.0, steps: int = 12, start_std: float = 0.1) -> Task:
    """Climb towards a cliff edge and stay as high as you dare: reward ``z[1]`` per step, and
    stepping over ``z[1] >= edge`` costs ``fall_penalty`` and ends the episode."""
    def reward(z: torch.Tensor) -> torch.Tensor:
        return torch.where(z[:, 1] >= edge, torch.full_like(z[:, 1], -fall_penalty), z[:, 1])

    def crashed(z: torch.Tensor) -> torch.Tensor:
        return z[:, 1] >= edge

    return Task("cliff", steps, reward, crashed, start=(0.0, 0.0), start_std=start_std,
                description=f"reward z[1] per step; z[1] >= {edge} falls: -{fall_penalty} and the episode ends")


def fork_road_task(half_width: float = 0.5, crash_penalty: float = 5.0, steps: int = 12,
                   world: WorldSpec = WORLD) -> Task:
    """Drive past the fork line on a narrow road: +1 for every step that ends right of the line,
    and leaving the road (``|z[1]| >= half_width``) costs ``crash_penalty`` and ends the episode.
    Episodes start just left of the line, at ``z = [0.2, 0]``. In the late-fork world each fork push
    is decided by the previous action, which the present state does not show."""
    def off_road(z: torch.Tensor) -> torch.Tensor:
        return z[:, 1].abs() >= half_width

    def reward(z: torch.Tensor) -> torch.Tensor:
        past_line = (z[:, 0] > world.fork_threshold).to(z.dtype)
        return torch.where(off_road(z), torch.full_like(past_line, -crash_penalty), past_line)

    return Task("fork road", steps, reward, off_road, start=(0.2, 0.0), start_std=0.05,
                description=f"+1 per step right of the fork line; |z[1]| >= {half_width} leaves the road: "
                            f"-{crash_penalty} and the episode ends")


def start_states(task: Task, n: int, generator: torch.Generator, device=None) -> torch.Tensor:
    """``n`` start states (n, D) for ``task``, drawn with ``generator`` (a CPU generator), on ``device``."""
    start = torch.as_tensor(task.start, dtype=torch.float32)
    noise = torch.randn(n, start.numel(), generator=generator)
    return (start + task.start_std * noise).to(device or "cpu")


class ForkWorld:
    """The real 2-D world as a batched environment: ``reset`` then ``step`` for N episodes at once.

    ``late_fork=False`` is the lesson world (a fresh coin decides each fork); ``True`` is the
    late fork, where the previous action's ``a[1]`` decides it (a coin at the first step).
    Randomness comes only from the generator passed to ``step`` (on the states' device).
    """

    def __init__(self, late_fork: bool = False, world: WorldSpec = WORLD):
        self.late_fork, self.world = late_fork, world
        self._previous: Optional[torch.Tensor] = None

    def reset(self, z0: torch.Tensor) -> torch.Tensor:
        """Start N episodes at ``z0`` (N, D); returns the states."""
        self._previous = None
        return z0

    def step(self, z: torch.Tensor, a: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """States (N, D) and actions (N, A) -> next states (N, D)."""
        n, d = z.shape
        noise = torch.randn(n, d, generator=generator, device=z.device) * self.world.noise_std
        coin_up = torch.rand(n, generator=generator, device=z.device) < 0.5
        if self.late_fork and self._previous is not None:
            fork_up = self._previous[:, 1] > 0
        else:
            fork_up = coin_up
        self._previous = a
        return world_step(z, a, noise, fork_up, self.world)


@dataclass(frozen=True)
class LinearController:
    """The paper's controller, ``a = tanh(W f + b)``, with ``f = [z, h]`` or ``f = z`` alone.

    A candidate is a flat vector of ``n_params = A * F + A`` numbers (``W`` row by row, then ``b``),
    which is what CMA-ES searches over; ``act`` applies P candidates to their own rows at once.
    """

    latent_dim: int
    action_dim: int
    hidden_dim: int = 0          # 0: the controller reads z alone

    @property
    def n_features(self) -> int:
        return self.latent_dim + self.hidden_dim

    @property
    def n_params(self) -> int:
        return self.action_dim * self.n_features + self.action_dim

    @classmethod
    def for_memory(cls, model, reads_memory: bool = True) -> "LinearController":
        """The controller for ``model``'s sizes; ``reads_memory=False`` gives it z alone."""
        return cls(model.latent_dim, model.action_dim, model.hidden_dim if reads_memory else 0)

    def unpack(self, params: torch.Tensor):
        """(P, n_params) -> W (P, A, F) and b (P, A)."""
        params = torch.as_tensor(params, dtype=torch.float32)
        if params.dim() == 1:
            params = params.unsqueeze(0)
        if params.dim() != 2 or params.shape[1] != self.n_params:
            raise ValueError(f"controller parameters must be (P, {self.n_params}) for {self.action_dim} actions "
                             f"from {self.n_features} features; got {tuple(params.shape)}")
        split = self.action_dim * self.n_features
        return params[:, :split].reshape(-1, self.action_dim, self.n_features), params[:, split:]

    def act(self, params: torch.Tensor, z: torch.Tensor, h: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Actions (P * E, A) for states ``z`` (P * E, D) and hidden states ``h`` (P * E, H), rows candidate-major."""
        weight, bias = self.unpack(params)
        weight, bias = weight.to(z.device), bias.to(z.device)
        features = z if self.hidden_dim == 0 else torch.cat([z, h], dim=-1)
        n_candidates = weight.shape[0]
        features = features.reshape(n_candidates, -1, self.n_features)           # (P, E, F)
        out = torch.einsum("pef,paf->pea", features, weight) + bias.unsqueeze(1)
        return torch.tanh(out).reshape(-1, self.action_dim)


@dataclass
class Rollouts:
    """P candidates x E episodes: states (P, E, T+1, D), actions (P, E, T, A), rewards and alive (P, E, T)."""

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    alive: torch.Tensor
    extras: dict = field(default_factory=dict)

    @property
    def returns(self) -> torch.Tensor:
        """Each episode's score (P, E): the rewards of the steps taken before it ended."""
        return (self.rewards * self.alive).sum(dim=-1)

    @property
    def crashed(self) -> torch.Tensor:
        """(P, E) bool: whether the episode ended in a crash."""
        return ~self.extras["survived"]


def _lstm_h(hidden) -> torch.Tensor:
    """The controller's h: the top layer's hidden state (N, H) of an LSTM state (h, c)."""
    if not (isinstance(hidden, tuple) and len(hidden) == 2):
        raise TypeError("the controller reads h from an LSTM state (h, c); this memory's hidden state is "
                        f"{type(hidden).__name__}. Use an MDNRNN (its LSTM) as the memory.")
    return hidden[0][-1]


def _run(task: Task, params: torch.Tensor, controller: LinearController, z0: torch.Tensor, model,
         next_state: Callable, observe: Optional[StateFn] = None) -> Rollouts:
    """The one loop both worlds share: read [z, h], act, let the memory read (z, a), move on."""
    n_candidates = torch.as_tensor(params).reshape(-1, controller.n_params).shape[0]
    n_rows = z0.shape[0]
    if n_rows % n_candidates:
        raise ValueError(f"{n_rows} start states do not split into {n_candidates} candidates' episodes")
    device = z0.device
    z_true = z0
    hidden = None
    h = torch.zeros(n_rows, controller.hidden_dim, device=device)
    alive = torch.ones(n_rows, dtype=torch.bool, device=device)
    states, actions, rewards, alives = [z_true], [], [], []
    for t in range(task.steps):
        z_seen = observe(z_true) if observe is not None else z_true
        a = controller.act(params, z_seen, h if controller.hidden_dim else None)
        out = None
        if model is not None:
            out = model(z_seen.unsqueeze(1), a.unsqueeze(1), hidden)
            hidden = out.hidden
            h = _lstm_h(hidden)
        z_true = next_state(t, z_true, a, out)
        rewards.append(task.reward(z_true))
        alives.append(alive)
        if task.crashed is not None:
            alive = alive & ~task.crashed(z_true)
        states.append(z_true)
        actions.append(a)
    shape = (n_candidates, n_rows // n_candidates)

    def by_candidate(steps):          # T tensors (P * E, ...) -> (P, E, T, ...)
        return torch.stack(steps, dim=1).reshape(*shape, len(steps), *steps[0].shape[1:])

    return Rollouts(states=by_candidate(states), actions=by_candidate(actions),
                    rewards=by_candidate(rewards).float(), alive=by_candidate(alives).float(),
                    extras={"survived": alive.reshape(shape)})


@torch.no_grad()
def real_rollouts(task: Task, params: torch.Tensor, controller: LinearController, z0: torch.Tensor, *,
                  env: Optional[ForkWorld] = None, model=None, generator: Optional[torch.Generator] = None,
                  observe: Optional[StateFn] = None) -> Rollouts:
    """Play every candidate's episodes in the real world.

    Args:
        task: the reward, crash rule and length.
        params: (P, n_params) candidates (or one (n_params,) controller).
        controller: the layout of ``params``.
        z0: (P * E, D) start states, rows candidate-major (candidate p owns rows p*E .. p*E + E - 1).
        env: the world (default: the lesson world, ``ForkWorld()``).
        model: the memory that gives ``h``, needed when the controller reads it.
        generator: the world's randomness, on ``z0``'s device.
        observe: what the memory and controller see of a true state (default: the state itself).
    """
    env = env or ForkWorld()
    if controller.hidden_dim and model is None:
        raise ValueError("this controller reads the memory's h: pass model= (the MDN-RNN) to real_rollouts")
    if model is not None:
        model.eval()
    env.reset(z0)
    return _run(task, params, controller, z0, model, lambda t, z, a, out: env.step(z, a, generator), observe)


def tempered_sample(log_pi: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, temperature: torch.Tensor,
                    uniform: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """``sample_mixture``'s rule (logits / tau, sigma * sqrt(tau)) with a temperature per row.

    ``log_pi``, ``mu``, ``sigma``: (N, D, K); ``temperature``: (N,) all > 0; ``uniform`` (N, D, K) in
    (0, 1) picks the component by Gumbel-max and ``normal`` (N, D) places the sample. Taking the random
    numbers as arguments lets every candidate see the same draws (common random numbers).
    """
    tau = temperature.reshape(-1, 1, 1)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
    choice = (log_pi / tau + gumbel).argmax(dim=-1, keepdim=True)
    chosen_mu = mu.gather(-1, choice).squeeze(-1)
    chosen_sigma = sigma.gather(-1, choice).squeeze(-1)
    return chosen_mu + chosen_sigma * tau.squeeze(-1).sqrt() * normal


@torch.no_grad()
def dream_rollouts(task: Task, params: torch.Tensor, controller: LinearController, z0: torch.Tensor, model,
                   temperature: Union[float, Sequence[float], torch.Tensor], *,
                   generator: Optional[torch.Generator] = None, common_noise: bool = True) -> Rollouts:
    """Play every candidate's episodes inside the memory's dream, all in one batch.

    The memory's mixture for the next state is sampled at ``temperature`` (a float, or one value
    per candidate, so several CMA-ES runs at different temperatures can share one batch) and fed
    back; the reward and crash rule are applied to the dreamed states. With ``common_noise`` every
    candidate's episode e sees the same random numbers (as its start state is the same when the
    caller gives candidates the same E starts), so candidates differ only by what they do.
    ``generator`` must be on ``z0``'s device.
    """
    n_candidates = torch.as_tensor(params).reshape(-1, controller.n_params).shape[0]
    n_rows, device = z0.shape[0], z0.device
    if n_rows % n_candidates:
        raise ValueError(f"{n_rows} start states do not split into {n_candidates} candidates' episodes")
    episodes = n_rows // n_candidates
    if z0.dim() != 2 or z0.shape[1] != model.latent_dim:
        raise ValueError(f"dream start states must be (P * E, {model.latent_dim}) for this memory "
                         f"(latent_dim={model.latent_dim}); got {tuple(z0.shape)}. If the task's states are not "
                         f"the memory's latents (frames), map them first: observe= in train_in_dream / evaluate_controller")
    tau = torch.as_tensor(temperature, dtype=torch.float32, device=device).reshape(-1)
    if tau.numel() not in (1, n_candidates):
        raise ValueError(f"temperature must be one value or one per candidate ({n_candidates}); got {tau.numel()}")
    if (tau <= 0).any():
        raise ValueError("dream temperatures must be > 0 (use dream.dream with temperature=0 for the deterministic limit)")
    tau_rows = tau.repeat_interleave(episodes) if tau.numel() > 1 else tau.expand(n_rows)
    d, k = model.latent_dim, model.n_components
    model.eval()

    def draws(shape):
        base = (episodes, *shape) if common_noise else (n_rows, *shape)
        u = torch.rand(base, generator=generator, device=device)
        g = torch.randn(base[:-1], generator=generator, device=device)
        if common_noise:
            u, g = u.repeat(n_candidates, *([1] * len(shape))), g.repeat(n_candidates, *([1] * (len(shape) - 1)))
        return u, g

    def next_state(t, z, a, out):
        uniform, normal = draws((d, k))
        return tempered_sample(out.log_pi[:, 0], out.mu[:, 0], out.sigma[:, 0], tau_rows, uniform, normal)

    return _run(task, params, controller, z0, model, next_state)
