"""The pixel world (lesson 8): rendering pinned to its closed form, reading states back, the world-frame
measure, and the film strip and GIF helpers."""
import io
import math

import pytest
import torch

from mdn_course import WORLD, generate_synthetic_data
from mdn_course.pixel_plots import dream_gif, film_strip, frame_grid, long_exposure
from mdn_course.pixel_world import (PIXEL_WORLD, PixelWorldSpec, ground, in_view, locate_car, pixel_centres, render,
                                    world_frame_error)

S = PIXEL_WORLD.size


def test_pixel_grid_covers_the_view_symmetrically():
    x = pixel_centres()
    assert x.shape == (S,)
    assert x[0].item() == pytest.approx(-PIXEL_WORLD.view + PIXEL_WORLD.pixel / 2)
    assert torch.allclose(x, -x.flip(0))
    assert PIXEL_WORLD.pixel == pytest.approx(0.2)


def test_render_matches_the_closed_form_pixel_by_pixel():
    g = torch.Generator().manual_seed(0)
    states = torch.randn(5, 2, generator=g)
    frames = render(states)
    x = pixel_centres().double()
    width = PIXEL_WORLD.car_width * PIXEL_WORLD.pixel
    for n in range(5):
        z0, z1 = states[n].double().tolist()
        for row, col in ((0, 0), (3, 17), (16, 16), (31, 2), (20, 30)):
            up = x.flip(0)[row].item()               # row 0 is the top of the picture: the largest z[1]
            across = x[col].item()
            shade = PIXEL_WORLD.fork_shade if across > WORLD.fork_threshold else 0.0
            car = math.exp(-((across - z0) ** 2 + (up - z1) ** 2) / (2 * width ** 2))
            assert frames[n, row, col].item() == pytest.approx(shade + (1 - shade) * car, abs=1e-6)


def test_render_any_batch_shape_deterministic_and_in_range():
    z, _ = generate_synthetic_data(6, seq_len=4, seed=1)
    frames = render(z)
    assert frames.shape == (6, 5, S, S) and frames.dtype == torch.float32
    assert 0.0 <= frames.min().item() and frames.max().item() <= 1.0
    assert torch.equal(frames, render(z))
    assert torch.equal(frames[2, 3], render(z[2, 3]))                 # batched == one at a time
    assert render(torch.tensor([0.1, -0.3])).shape == (S, S)


def test_ground_is_shaded_only_right_of_the_fork_line_and_the_car_is_drawn_over_it():
    far_away = render(torch.tensor([100.0, 100.0]))                  # no car in the picture: only the ground
    column_shade = ground()
    assert torch.equal(far_away, column_shade.expand(S, S))
    right = pixel_centres() > WORLD.fork_threshold
    assert (column_shade[right] == PIXEL_WORLD.fork_shade).all() and (column_shade[~right] == 0).all()
    on_pixel = torch.tensor([pixel_centres()[25].item(), pixel_centres().flip(0)[10].item()])
    assert render(on_pixel)[10, 25].item() == pytest.approx(1.0)      # brightness 1 at the car, shade or not


def test_moving_the_car_one_pixel_moves_its_picture_one_pixel():
    p = PIXEL_WORLD.pixel
    a, b = render(torch.tensor([-1.0, 0.3])), render(torch.tensor([-1.0 + p, 0.3 + p]))
    # left of the fork line the ground is dark, so the car's picture is the frame: shifted right by one, up by one
    assert torch.allclose(b[1:8, 1:12], a[2:9, 0:11], atol=1e-6)


def test_render_is_differentiable_and_follows_the_states_device():
    z = torch.tensor([[0.3, -0.2]], requires_grad=True)
    render(z).sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0
    assert render(z.detach().double()).dtype == torch.float64


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(4, 3), torch.zeros(())])
def test_render_rejects_states_that_are_not_pairs(bad):
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        render(bad)


def test_locate_car_reads_rendered_states_back_even_at_the_edge():
    g = torch.Generator().manual_seed(2)
    inside = (torch.rand(500, 2, generator=g) * 2 - 1) * 3.1         # up to half a car out of the picture
    assert (locate_car(render(inside)) - inside).abs().max().item() < 1e-4
    centre_only = locate_car(render(inside), refine_steps=0)          # the centroid alone is biased at the edge
    assert (centre_only - inside).abs().max().item() > 0.05


def test_locate_car_rejects_frames_of_the_wrong_size():
    with pytest.raises(ValueError, match="32, 32"):
        locate_car(torch.zeros(4, 28, 28))


def test_world_frame_error_is_zero_for_world_frames_and_large_for_pictures_no_state_draws():
    g = torch.Generator().manual_seed(3)
    states = (torch.rand(50, 2, generator=g) * 2 - 1) * 2.8
    assert world_frame_error(render(states)).max().item() < 1e-4
    assert world_frame_error(render(states), reduction="rms").max().item() < 1e-5
    two_halves = 0.5 * (render(torch.tensor([1.0, 0.6])) + render(torch.tensor([1.0, -0.6])))
    assert world_frame_error(two_halves).item() > 0.3                 # the blend of two branches
    no_car = ground().expand(S, S)
    assert world_frame_error(no_car).item() > 0.9                     # a fitted car lands somewhere
    dimmer = 0.6 * render(torch.tensor([0.0, 0.0]))
    assert world_frame_error(dimmer).item() == pytest.approx(0.4, abs=0.01)
    with pytest.raises(ValueError, match="reduction"):
        world_frame_error(no_car, reduction="mean")


def test_in_view_respects_the_margin():
    states = torch.tensor([[0.0, 0.0], [2.79, -2.79], [2.81, 0.0], [0.0, -3.0]])
    assert in_view(states).tolist() == [True, True, False, False]
    assert in_view(states, margin=0.0).tolist() == [True, True, True, True]
    other = PixelWorldSpec(view=2.0)
    assert in_view(states, spec=other).tolist() == [True, False, False, False]


def test_film_strip_and_frame_grid_have_one_panel_per_step_and_label():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z, _ = generate_synthetic_data(3, seq_len=6, seed=4)
    rows = {"real": render(z[0]), "again": render(z[1])}
    fig = film_strip(rows, steps=[0, 3, 6], title="t", exposures={"again": render(z)})
    assert len(fig.axes) == 2 * 4
    assert [ax.get_ylabel() for ax in fig.axes[::4]] == ["real", "again"]
    assert fig.axes[-1].get_title() == "3 futures, exposed"
    plt.close(fig)
    fig = frame_grid({"a": render(z[0, :4]), "b": render(z[1, :2])}, title="g", column_titles=["1", "2", "3", "4"])
    assert len(fig.axes) == 8 and fig.axes[0].get_title() == "1"
    plt.close(fig)
    assert torch.equal(long_exposure(render(z[0])), render(z[0]).amax(dim=0))


def test_dream_gif_is_an_animated_gif_with_one_frame_per_step():
    import matplotlib
    from PIL import Image

    z, _ = generate_synthetic_data(2, seq_len=7, seed=5)
    gif = dream_gif({"real": render(z[0]), "dream": render(z[1])}, scale=3)
    assert gif[:6] == b"GIF89a" and len(gif) < 100_000
    image = Image.open(io.BytesIO(gif))
    assert image.n_frames == 8 and image.info.get("loop") == 0
    assert image.size[1] == 3 * S + 30
    path = torch.stack([torch.linspace(-1.0, 2.0, 8), torch.zeros(8)], dim=-1)       # away from the top-left corner
    image = Image.open(io.BytesIO(dream_gif({"a": render(path), "b": render(path)}, scale=3)))
    image.seek(7)                                     # the trail shows the car's past, never lifts the empty ground
    corner = image.convert("RGB").getpixel((6 + 1, 16 + 1))
    empty = [255 * c for c in matplotlib.colormaps["cividis"](0.0)[:3]]
    assert max(abs(a - b) for a, b in zip(corner, empty)) < 12
    with pytest.raises(ValueError, match="same number of steps"):
        dream_gif({"real": render(z[0]), "short": render(z[1, :3])})
