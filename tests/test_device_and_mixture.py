"""Device helper, seeding, NumPy mixture maths and the plot helpers."""
import random

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

from mdn_course import (MDNRNN, describe_device, gaussian_pdf, get_device, mixture_pdf, plot_mixture,  # noqa: E402
                        plot_predicted_mixture, plot_training_curve, plot_trajectories, set_seed)
from mdn_course.training import TrainingHistory  # noqa: E402


def test_get_device_and_description():
    device = get_device()
    assert device.type in {"cpu", "cuda", "mps"}
    assert get_device("cpu") == torch.device("cpu")
    text = describe_device(torch.device("cpu"))
    assert text.startswith("CPU, ") and "thread" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where CUDA is absent")
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        get_device("cuda")


def test_set_seed_covers_python_numpy_torch():
    set_seed(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    set_seed(7)
    assert first == (random.random(), np.random.rand(), torch.rand(1).item())
    with pytest.raises(TypeError):
        set_seed("7")


def test_gaussian_pdf_and_mixture_integrate_to_one():
    x = np.linspace(-10, 10, 20001)
    assert np.trapezoid(gaussian_pdf(x, 1.0, 0.7), x) == pytest.approx(1.0, abs=1e-6)
    assert gaussian_pdf(0.0, 0.0, 1.0) == pytest.approx(1 / np.sqrt(2 * np.pi))
    assert np.trapezoid(mixture_pdf(x, [0.2, 0.8], [-2, 1], [0.5, 1.5]), x) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="sum to 1"):
        mixture_pdf(x, [0.5, 0.6], [0, 1], [1, 1])
    with pytest.raises(ValueError, match="standard deviation"):
        gaussian_pdf(x, 0.0, -1.0)


def _labelled(ax):
    return ax.get_title() and ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None


def test_plot_helpers_title_label_and_legend():
    import matplotlib.pyplot as plt

    torch.manual_seed(0)
    model = MDNRNN()
    history = TrainingHistory(train_nll=[1.0, 0.5], heldout_nll=[1.1, 0.6])
    axes = [
        plot_mixture([0.5, 0.5], [-1, 1], [0.3, 0.3]),
        plot_training_curve(history, bayes_floor=-3.0),
        plot_predicted_mixture(model, torch.tensor([1.0, 0.0])),
        plot_trajectories(torch.zeros(3, 5, 2), torch.ones(3, 5, 2)),
    ]
    assert all(_labelled(ax) for ax in axes)
    plt.close("all")
