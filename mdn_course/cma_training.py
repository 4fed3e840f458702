"""Training the controller with CMA-ES: inside the memory's dream, or in the real world.

CMA-ES (Hansen's covariance matrix adaptation evolution strategy, the ``cma`` package, which the
World Models code used) needs nothing but a score per candidate: it samples a population of
parameter vectors from a Gaussian, scores them, and moves and reshapes the Gaussian towards the
better ones. No gradient flows through the world or the dream, which is why a controller can be
trained in an environment that is only a sampler.

Here each generation's whole population, every candidate playing the same E episodes, is scored
in one batched rollout (``control.py``). Several CMA-ES runs (one per dream temperature) step in
lockstep and share that batch. Each run draws its samples from its own NumPy generator seeded from
``seed``, and the episodes' start states and random numbers come from seeded torch generators, so a
training replays exactly on one machine.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from .device import get_device
from .control import ForkWorld, LinearController, StateFn, Task, dream_rollouts, real_rollouts, start_states
from .progress import progress_bar

__all__ = ["CMAResult", "run_cma", "train_in_dream", "train_in_world", "evaluate_controller", "ScoreRow", "dream_and_real_scores",
           "score_table"]


@dataclass
class CMAResult:
    """One CMA-ES run: the final controller (the search distribution's mean) and its history."""

    params: np.ndarray
    mean_score: List[float] = field(default_factory=list)     # population's mean score, per generation
    best_score: List[float] = field(default_factory=list)     # best candidate's score, per generation
    popsize: int = 0
    generations: int = 0
    seconds: float = 0.0


def run_cma(score: Callable[[np.ndarray], np.ndarray], n_params: int, n_runs: int = 1, *, popsize: int = 32,
            generations: int = 100, sigma0: float = 0.5, seed: int = 1, progress: bool = True,
            desc: str = "CMA-ES") -> List[CMAResult]:
    """Run ``n_runs`` CMA-ES searches in lockstep, maximising ``score``.

    ``score`` gets every run's population stacked, (n_runs * popsize, n_params) with run r's
    candidates in rows r*popsize .. (r+1)*popsize - 1, and returns one score per row. Each run
    starts at the zero controller with step size ``sigma0``. ``seed`` (>= 1; pycma reads 0 as
    "use the clock") seeds run r with ``seed + r``.
    """
    import cma

    if seed < 1:
        raise ValueError(f"seed must be >= 1 (pycma treats 0 as 'seed from the clock'), got {seed}")
    if popsize < 4 or generations < 1:
        raise ValueError(f"need popsize >= 4 and generations >= 1, got {popsize} and {generations}")
    searches = []
    for r in range(n_runs):
        rng = np.random.default_rng(seed + r)
        options = {"popsize": popsize, "seed": seed + r, "verbose": -9, "maxiter": generations,
                   "tolfun": 0, "tolflatfitness": generations + 1, "tolfunhist": 0, "tolx": 0, "tolstagnation": generations + 1,
                   "randn": lambda lam, n, rng=rng: rng.standard_normal((lam, n))}
        searches.append(cma.CMAEvolutionStrategy(np.zeros(n_params), sigma0, options))
    results = [CMAResult(params=np.zeros(n_params), popsize=popsize, generations=generations) for _ in range(n_runs)]
    started = time.perf_counter()
    for _ in progress_bar(range(generations), desc=desc, unit="generation", disable=not progress):
        populations = [np.asarray(es.ask()) for es in searches]
        scores = np.asarray(score(np.concatenate(populations)), dtype=np.float64).reshape(n_runs, popsize)
        for es, population, run_scores, result in zip(searches, populations, scores, results):
            es.tell(list(population), list(-run_scores))          # CMA-ES minimises
            result.mean_score.append(float(run_scores.mean()))
            result.best_score.append(float(run_scores.max()))
    seconds = time.perf_counter() - started
    for es, result in zip(searches, results):
        result.params = np.asarray(es.mean, dtype=np.float64).copy()
        result.seconds = seconds
    return results


def _episode_starts(task: Task, n_candidates: int, episodes: int, generator: torch.Generator, device) -> torch.Tensor:
    """E fresh start states, the same for every candidate: (n_candidates * E, D), candidate-major."""
    return start_states(task, episodes, generator, device).repeat(n_candidates, 1)


def train_in_dream(model, task: Task, temperatures: Sequence[float], *, popsize: int = 32, generations: int = 100,
                   episodes: int = 16, sigma0: float = 0.5, seed: int = 1, reads_memory: bool = True,
                   progress: bool = True, observe: Optional[StateFn] = None) -> Dict[float, CMAResult]:
    """Train one controller per dream temperature, entirely inside ``model``'s dream.

    Every generation, all temperatures' populations play the same ``episodes`` fresh start states
    in one batched dream (``dream_rollouts`` with a temperature per candidate); a candidate's score
    is its mean dreamed return. ``observe`` maps the task's start states into the latent the memory
    dreams in (for frames: render and encode; default: the states themselves); a generation's E starts
    are observed once and shared by every candidate. Returns {temperature: CMAResult}.
    """
    temperatures = [float(t) for t in temperatures]
    controller = LinearController.for_memory(model, reads_memory)
    device = model.device
    starts_gen = torch.Generator().manual_seed(seed)
    dream_gen = torch.Generator(device=device).manual_seed(seed)
    taus = torch.tensor(temperatures, device=device).repeat_interleave(popsize)

    def score(population: np.ndarray) -> np.ndarray:
        params = torch.as_tensor(population, dtype=torch.float32, device=device)
        z0 = start_states(task, episodes, starts_gen, device)          # this generation's E starts
        z0 = observe(z0) if observe is not None else z0                 # seen once, then shared by all
        played = dream_rollouts(task, params, controller, z0.repeat(params.shape[0], 1), model, taus,
                                generator=dream_gen)
        return played.returns.mean(dim=1).double().cpu().numpy()

    results = run_cma(score, controller.n_params, len(temperatures), popsize=popsize, generations=generations,
                      sigma0=sigma0, seed=seed, progress=progress, desc="training in the dream")
    return dict(zip(temperatures, results))


def _controller_and_device(model, reads_memory: bool, device, latent_dim: int, action_dim: int):
    if reads_memory and model is None:
        raise ValueError("a controller that reads h needs the memory: pass model=, or reads_memory=False")
    if model is not None:
        return LinearController.for_memory(model, reads_memory), model.device
    return LinearController(latent_dim, action_dim, 0), torch.device(device) if device else get_device()


def train_in_world(task: Task, *, model=None, env: Optional[ForkWorld] = None, reads_memory: bool = True,
                   popsize: int = 32, generations: int = 100, episodes: int = 16, sigma0: float = 0.5, seed: int = 1,
                   progress: bool = True, device=None, latent_dim: int = 2, action_dim: int = 2,
                   observe: Optional[StateFn] = None) -> CMAResult:
    """Train a controller by CMA-ES in the real world: the yardstick for dream-trained ones.

    With ``reads_memory`` the memory ``model`` runs alongside on the real states to give ``h``
    (the rollouts then run on its device; otherwise on ``device``, default ``get_device()``).
    Unlike the dream, the world cannot replay its randomness: each candidate's episodes get their own.
    ``observe`` is what the controller and memory see of a state (``real_rollouts``).
    """
    controller, device = _controller_and_device(model, reads_memory, device, latent_dim, action_dim)
    env = env or ForkWorld()
    starts_gen = torch.Generator().manual_seed(seed)
    world_gen = torch.Generator(device=device).manual_seed(seed)

    def score(population: np.ndarray) -> np.ndarray:
        params = torch.as_tensor(population, dtype=torch.float32, device=device)
        z0 = _episode_starts(task, params.shape[0], episodes, starts_gen, device)
        played = real_rollouts(task, params, controller, z0, env=env, model=model if reads_memory else None,
                               generator=world_gen, observe=observe)
        return played.returns.mean(dim=1).double().cpu().numpy()

    return run_cma(score, controller.n_params, 1, popsize=popsize, generations=generations, sigma0=sigma0,
                   seed=seed, progress=progress, desc="training in the world")[0]


def evaluate_controller(task: Task, params, *, model=None, reads_memory: bool = True, temperature: Optional[float] = None,
                        env: Optional[ForkWorld] = None, episodes: int = 500, seed: int = 1234, device=None,
                        latent_dim: int = 2, action_dim: int = 2, observe: Optional[StateFn] = None):
    """Score one controller on fixed episodes: in the real world, or in the dream at ``temperature``.

    Returns the ``Rollouts`` (one candidate, ``episodes`` episodes); ``.returns[0]`` are the scores.
    The same ``seed`` gives the same start states in both places. A dream needs ``model``; ``observe``
    maps true states to what the controller and memory see (in the dream: the start states only).
    """
    if temperature is not None and model is None:
        raise ValueError("scoring in the dream needs the memory that dreams: pass model=")
    controller, device = _controller_and_device(model, reads_memory, device, latent_dim, action_dim)
    params = torch.as_tensor(np.asarray(params), dtype=torch.float32, device=device).reshape(1, -1)
    z0 = start_states(task, episodes, torch.Generator().manual_seed(seed), device)
    gen = torch.Generator(device=device).manual_seed(seed)
    if temperature is None:
        return real_rollouts(task, params, controller, z0, env=env, model=model if reads_memory else None,
                             generator=gen, observe=observe)
    z0 = observe(z0) if observe is not None else z0
    return dream_rollouts(task, params, controller, z0, model, temperature, generator=gen)


@dataclass(frozen=True)
class ScoreRow:
    """One controller scored on the same fixed episodes in the dream (if it has a temperature) and the world."""

    label: str
    temperature: Optional[float]
    dream_mean: float
    dream_std: float
    real_mean: float
    real_std: float
    real_crashed: float          # share of real episodes that ended in a crash

    @property
    def gap(self) -> float:
        """Dream score minus real score: how much the dream flattered the controller."""
        return self.dream_mean - self.real_mean


def dream_and_real_scores(task: Task, controllers: Dict[str, tuple], *, model=None, reads_memory: bool = False,
                          env: Optional[ForkWorld] = None, episodes: int = 500, seed: int = 1234,
                          dream_task: Optional[Task] = None, observe: Optional[StateFn] = None) -> List[ScoreRow]:
    """Score each controller, ``{label: (params, temperature or None)}``, on ``episodes`` fixed episodes:
    in the dream at its own temperature (none for a controller trained in the world) and in the world.
    Mean and standard deviation are over episodes.

    For a controller on frames, ``observe`` is what it and the memory see of a state (V's latent), and
    ``dream_task`` scores the dream (``task.read_through(readout)``): the world is scored by ``task`` on
    its true states, the dream by ``dream_task`` on its latents.
    """
    rows = []
    for label, (params, temperature) in controllers.items():
        real = evaluate_controller(task, params, model=model, reads_memory=reads_memory, env=env,
                                   episodes=episodes, seed=seed, observe=observe)
        dream_mean = dream_std = float("nan")
        if temperature is not None:
            dreamed = evaluate_controller(dream_task or task, params, model=model, reads_memory=reads_memory,
                                          temperature=temperature, episodes=episodes, seed=seed,
                                          observe=observe).returns[0]
            dream_mean, dream_std = float(dreamed.mean()), float(dreamed.std())
        returns = real.returns[0]
        rows.append(ScoreRow(label, temperature, dream_mean, dream_std, float(returns.mean()), float(returns.std()),
                             float(real.crashed.float().mean())))
    return rows


def score_table(rows: Sequence[ScoreRow], labels: Optional[Sequence[str]] = None) -> str:
    """The lesson's score table as text: per row its label (or ``labels[i]``), the dream score and the
    real score (mean +- standard deviation over episodes; "-" where it has no dream) and its real falls."""
    labels = [row.label for row in rows] if labels is None else list(labels)
    if len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} rows")
    width = max(24, *(len(label) for label in labels))
    lines = [f"{'trained in':{width}s} {'dream score':>14s} {'real score':>14s} {'fell (real)':>12s}"]
    for label, row in zip(labels, rows):
        dream = f"{row.dream_mean:5.2f} +- {row.dream_std:4.2f}" if row.temperature is not None else "-"
        lines.append(f"{label:{width}s} {dream:>14s} {row.real_mean:5.2f} +- {row.real_std:4.2f} "
                     f"{row.real_crashed:12.0%}")
    return "\n".join(lines)
