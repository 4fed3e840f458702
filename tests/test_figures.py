"""The course's figure helpers: palette, alt text on every image, and the lessons that use them."""
import json
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from mdn_course.figures import CYCLE, OKABE_ITO, figure_alt_texts, show_figure, use_course_style  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
#: Lessons whose every figure goes through show_figure (03 and 09 are owned elsewhere and not yet converted).
WITH_ALT_TEXT = ["01_why_distributions", "02_the_model", "04_training", "05_dreaming", "06_memory_and_attention",
                 "07_long_dreams_and_next_steps", "08_dreams_you_can_see", "09_learning_in_the_dream"]


def test_palette_is_okabe_ito_and_becomes_the_cycle():
    assert set(CYCLE) == set(OKABE_ITO.values())
    use_course_style()
    assert plt.rcParams["axes.prop_cycle"].by_key()["color"] == list(CYCLE)


def test_show_figure_displays_png_with_alt_text(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append((a, k)))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    show_figure(fig, alt="A  rising\n line.")
    (bundle,), kwargs = shown[0]
    assert bundle["image/png"] and bundle["text/plain"] == "[figure] A rising line."
    assert kwargs["metadata"] == {"image/png": {"alt": "A rising line."}} and kwargs["raw"]
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize("alt", ["", "   ", None])
def test_show_figure_refuses_missing_alt_text(alt):
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="alt text"):
        show_figure(fig, alt=alt)
    plt.close(fig)


@pytest.mark.parametrize("stem", WITH_ALT_TEXT)
def test_every_stored_figure_has_alt_text(stem):
    notebook = json.loads((REPO / "notebooks" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    alts = figure_alt_texts(notebook)
    assert alts, f"{stem} stores no figure"
    assert all(isinstance(a, str) and len(a.split()) >= 8 for a in alts), \
        f"{stem}: a figure without alt text (show it with mdn_course.figures.show_figure(fig, alt=...)): {alts}"


def test_lesson6_legend_hides_no_bar():
    """Lesson 6's gaps (its stored numbers, rounded): the legend box overlaps none of the bars."""
    from mdn_course.plots import plot_gap_bars

    names = ["no memory (feed-forward)", "LSTM (MDN-RNN)", "Transformer"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    plot_gap_bars(names, {"fork steps": [0.79, 0.36, 0.75], "other steps": [0.03, 0.05, 0.03]}, ax=ax,
                  title="t", ylabel="y", reference=(0.693, "log 2"))
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    bars = [patch.get_window_extent() for patch in ax.patches]
    assert len(bars) == 6
    assert not any(legend.overlaps(bar) for bar in bars), "the legend covers a bar"
    plt.close(fig)


def test_show_gif_needs_alt_text_and_stores_it(monkeypatch):
    from mdn_course.pixel_plots import show_gif

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append((a, k)))
    with pytest.raises(ValueError, match="alt text"):
        show_gif(b"GIF89a", alt=" ")
    show_gif(b"GIF89a", alt="A car zigzags.")
    (bundle,), kwargs = shown[0]
    assert bundle["text/plain"] == "[animation] A car zigzags." and kwargs["metadata"]["image/gif"]["alt"]
