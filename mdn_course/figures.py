"""How every lesson shows a figure: one colour-blind-safe palette, and alt text with every image.

The palette is Okabe and Ito's (2008), eight colours that stay distinct for the common
forms of colour blindness. ``use_course_style()`` makes it matplotlib's colour cycle, and the
plotting helpers take their colours from ``COLOURS``, so "real" and "dreamed" mean the same
colour in every lesson. Where colour carries meaning, the helpers also vary the line style or
the marker, so a figure still reads in grey.

``show_figure(fig, alt=...)`` replaces ``plt.show()``: it renders the figure once as a PNG and
displays it with the alt text in the image's metadata (nbconvert writes it into the HTML
``<img alt=...>``) and as the output's ``text/plain`` (what a screen reader, a text-only
front end or a diff of the notebook shows instead of ``<Figure size ... with 2 Axes>``).
"""
from __future__ import annotations

import base64
from types import SimpleNamespace
from typing import Optional

__all__ = ["OKABE_ITO", "COLOURS", "CYCLE", "use_course_style", "figure_png", "show_image", "show_figure", "figure_alt_texts"]

#: Okabe-Ito colours by name.
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
}

#: The order a figure's series take their colours in (yellow last: it is faint on white).
CYCLE = tuple(OKABE_ITO[name] for name in ("blue", "vermillion", "bluish green", "orange", "reddish purple",
                                           "sky blue", "black", "yellow"))

#: What each colour means across the course.
COLOURS = SimpleNamespace(
    real=OKABE_ITO["blue"],            # the real world, data, the K = 5 model
    dreamed=OKABE_ITO["vermillion"],   # dreams, the squared-error fit, the K = 1 model
    third=OKABE_ITO["bluish green"],   # a third series (e.g. the Transformer)
    fork=OKABE_ITO["orange"],          # the fork line z[0] = 0.5 (always dashed)
    truth=OKABE_ITO["black"],          # true distributions and floors (dotted or dashed)
    highlight=OKABE_ITO["reddish purple"],
)


def use_course_style() -> None:
    """Make the Okabe-Ito palette matplotlib's default colour cycle (lessons call it in their setup cell)."""
    import matplotlib
    from cycler import cycler

    matplotlib.rcParams["axes.prop_cycle"] = cycler(color=list(CYCLE))


def figure_png(fig) -> bytes:
    """The figure as PNG bytes, cropped like the inline backend crops it."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def show_image(mime: str, data: bytes, *, alt: str, kind: str = "figure") -> None:
    """Display image bytes (``mime`` such as ``"image/png"`` or ``"image/gif"``) with ``alt`` as alt text.

    The alt text goes into the output's metadata (``{mime: {"alt": ...}}``, which nbconvert's HTML uses)
    and into its ``text/plain``, prefixed with ``[kind]``. Empty alt text is refused.
    """
    from IPython.display import display

    if not isinstance(alt, str) or not alt.strip():
        raise ValueError(f"showing a {kind} needs alt text: a sentence saying what it shows, e.g. "
                         "alt='Loss curve falling to the dashed floor'")
    alt = " ".join(alt.split())
    display({mime: base64.b64encode(data).decode("ascii"), "text/plain": f"[{kind}] {alt}"},
            metadata={mime: {"alt": alt}}, raw=True)


def show_figure(fig=None, *, alt: str, close: bool = True) -> None:
    """Display ``fig`` (default: the current figure) as a PNG with ``alt`` as its alternative text.

    ``alt`` says what the figure shows and what the reader should see in it, in a sentence
    or two; it must not be empty. The figure is closed afterwards (``close=False`` keeps it),
    so the inline backend does not draw it a second time.
    """
    import matplotlib.pyplot as plt

    fig = plt.gcf() if fig is None else fig
    try:
        show_image("image/png", figure_png(fig), alt=alt, kind="figure")
    finally:
        if close:
            plt.close(fig)


def figure_alt_texts(notebook) -> list:
    """The alt text of every PNG or GIF output of a notebook (``None`` where an image has none): for tests."""
    found = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            for mime in ("image/png", "image/gif"):
                if mime in output.get("data", {}):
                    found.append(output.get("metadata", {}).get(mime, {}).get("alt"))
    return found

