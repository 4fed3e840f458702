"""What lesson 8 (dreams you can see) says about its trained V and M, with margins that hold on any CPU.

The slow tests retrain what the lesson trains (same seeds, same recipes) and assert each claim
the lesson's prose makes, with margins several times wider than the differences between CPUs.
The fast tests check the stored notebook: small outputs (the budget is 1 MB), an animation that
plays without ffmpeg (an embedded GIF) and a static film strip beside it.
"""
import base64
import json
from pathlib import Path

import pytest
import torch

from mdn_course import MDNRNN, bayes_optimal_nll, dream, evaluate_nll, generate_synthetic_data, set_seed, train_model
from mdn_course.latent_memory import (encode_sequences, in_view_sequences, latent_floor, latents_to_states,
                                      real_futures, train_memory_on_latents)
from mdn_course.pixel_world import render, world_frame_error
from mdn_course.temperature import branch_report
from mdn_course.vae import encode_frames, train_lesson_vae

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "08_dreams_you_can_see.ipynb"
BUDGET_BYTES = 1_000_000
CPU = torch.device("cpu")


# ---------------------------------------------------------------- the stored notebook (fast)

def _stored():
    return json.loads(NOTEBOOK.read_text(encoding="utf-8"))


def test_stored_notebook_stays_within_its_budget_of_one_megabyte():
    assert NOTEBOOK.stat().st_size <= BUDGET_BYTES, (
        f"{NOTEBOOK.name} stores {NOTEBOOK.stat().st_size:,} bytes; the budget is {BUDGET_BYTES:,}: "
        "shrink the figures or the animation")


def test_animation_is_an_embedded_gif_beside_a_static_film_strip():
    cells = [c for c in _stored()["cells"] if c["cell_type"] == "code"]
    gifs = [(c, o) for c in cells for o in c["outputs"] if "image/gif" in o.get("data", {})]
    assert len(gifs) == 1
    cell, output = gifs[0]
    assert "nbval-ignore-output" in cell["metadata"].get("tags", [])         # bytes differ between machines
    data = base64.b64decode("".join(output["data"]["image/gif"]))
    assert data[:6] == b"GIF89a" and len(data) < 200_000
    strip = next(c for c in cells if "film_strip(films" in "".join(c["source"]))
    assert any("image/png" in o.get("data", {}) for o in strip["outputs"])
    assert "nbval-ignore-output" not in strip["metadata"].get("tags", [])


# ---------------------------------------------------------------- the lesson's claims (slow)

@pytest.fixture(scope="module")
def lesson():
    z, a = in_view_sequences(*generate_synthetic_data(seed=0))
    vae, history = train_lesson_vae(z, seed=0, device=CPU, progress=False)
    autoencoder, ae_history = train_lesson_vae(z, seed=0, autoencoder=True, device=CPU, progress=False)
    train_z, train_a = z[:1200], a[:1200]
    on_latents, _, _ = train_memory_on_latents(vae, train_z, train_a, epochs=40, progress=False)
    set_seed(0)
    on_states = MDNRNN()
    train_model(on_states, train_z, train_a, epochs=40, progress=False)
    return dict(z=z, a=a, vae=vae, history=history, autoencoder=autoencoder, ae_history=ae_history,
                on_latents=on_latents, on_states=on_states)


@pytest.fixture(scope="module")
def futures(lesson):
    start, plan = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]).expand(10, 2)
    real = real_futures(start, plan, 200, generator=torch.Generator().manual_seed(3))
    first = encode_sequences(lesson["vae"], start)
    dreams = {tau: dream(lesson["on_latents"], first, plan, tau, n=200, generator=torch.Generator().manual_seed(4))
              for tau in (1.0, 0.003)}
    return real, dreams


@pytest.mark.slow
def test_v_reconstructs_within_the_stated_error_and_each_number_tracks_one_coordinate(lesson):
    assert lesson["history"].heldout_rms[-1] < 0.03                 # printed as 0.020 RMS brightness
    assert lesson["ae_history"].heldout_rms[-1] < 0.03               # the autoencoder copies frames as well
    sample = lesson["z"].reshape(-1, 2)[torch.randperm(lesson["z"].numel() // 2,
                                                       generator=torch.Generator().manual_seed(1))[:1000]]
    mu, log_var = encode_frames(lesson["vae"], render(sample))
    corr = torch.corrcoef(torch.cat([mu.T, sample.T]))[:2, 2:].abs()
    assert corr[0, 0] > 0.97 and corr[1, 1] > 0.97                   # printed as 1.00
    assert corr[0, 1] < 0.15 and corr[1, 0] < 0.15
    assert (0.5 * log_var).exp().median() < 0.2 * mu.std(dim=0).min()  # "a small fraction": 0.05 against 0.41


@pytest.mark.slow
def test_only_the_variational_latent_space_is_filled(lesson):
    z = lesson["z"]
    sample = z.reshape(-1, 2)[torch.randperm(z.numel() // 2, generator=torch.Generator().manual_seed(1))[:1000]]
    real = render(sample)
    vae, ae = lesson["vae"], lesson["autoencoder"]
    yardstick = world_frame_error(vae.decode(encode_frames(vae, real)[0])).quantile(0.95)
    prior = torch.randn(2000, 2, generator=torch.Generator().manual_seed(2))
    share = {name: (world_frame_error(m.decode(prior)) <= yardstick).float().mean().item()
             for name, m in (("vae", vae), ("ae", ae))}
    assert share["vae"] > 0.45 and share["ae"] < share["vae"] - 0.2   # printed as 61% and 23%
    spread = {name: encode_frames(m, real)[0].std(dim=0) for name, m in (("vae", vae), ("ae", ae))}
    assert (spread["vae"] > 1.4 * spread["ae"]).all()                 # "about twice as far"


@pytest.mark.slow
def test_seeing_through_v_costs_the_memory_a_little(lesson):
    test_z, test_a = in_view_sequences(*generate_synthetic_data(200, seed=7))
    states_gap = evaluate_nll(lesson["on_states"], test_z, test_a) - bayes_optimal_nll(test_z, test_a)
    latent_gap = (evaluate_nll(lesson["on_latents"], encode_sequences(lesson["vae"], test_z), test_a)
                  - latent_floor(lesson["vae"], test_z, test_a))
    assert 0.0 < states_gap < 0.2                                     # printed as 0.11
    assert 0.0 < latent_gap < 0.45                                    # printed as 0.25
    assert 0.03 < latent_gap - states_gap < 0.3                       # "a little over a tenth of a nat more"


@pytest.mark.slow
def test_the_dreamed_car_takes_each_branch_about_as_often_as_the_real_one(lesson, futures):
    real, dreams = futures
    vae = lesson["vae"]
    real_report = branch_report(latents_to_states(vae, encode_sequences(vae, real))[:, 3:])
    warm = branch_report(latents_to_states(vae, dreams[1.0])[:, 3:])
    cold = branch_report(latents_to_states(vae, dreams[0.003])[:, 3:])
    assert abs(real_report["share_up"] - 0.5) < 0.06
    assert abs(warm["share_up"] - 0.5) < 0.08 and abs(warm["share_up"] - real_report["share_up"]) < 0.08
    assert warm["distinct_patterns"] > 0.8 * warm["distinct_patterns_by_chance"]   # fair coins at tau = 1
    assert warm["off_branch"] < 0.1                                                # printed as 3%
    assert cold["distinct_patterns"] < 0.4 * warm["distinct_patterns"]             # commits at tau = 0.003


@pytest.mark.slow
def test_decoded_dreams_look_like_world_frames_and_the_average_future_does_not(lesson, futures):
    real, dreams = futures
    vae = lesson["vae"]
    copies = world_frame_error(vae.decode(encode_sequences(vae, real))).mean()
    dreamed = {tau: world_frame_error(vae.decode(d)).mean() for tau, d in dreams.items()}
    ghost = world_frame_error(render(real).mean(dim=0))[3:].mean()
    for tau, error in dreamed.items():
        assert error < 1.25 * copies, tau                            # as close to a world frame as V's copies
    assert ghost > 1.4 * copies                                       # printed as 0.32 against 0.19
