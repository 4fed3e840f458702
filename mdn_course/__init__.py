"""mdn_course: the code of a narrated course on Mixture Density Network RNNs.

The notebooks import everything they use from here, so every line a student
runs is also compiled, documented and tested in this package.
"""
from .data import WORLD, WorldSpec, bayes_optimal_nll, generate_synthetic_data, true_next_state_mixture
from .device import describe_device, get_device, set_seed
from .loss import mdn_loss, mdn_nll_from_logs
from .mixture import gaussian_pdf, mixture_pdf, plot_mixture
from .model import MDNHead, MDNRNN, MixtureOutput, WorldLSTM
from .training import TrainingHistory, evaluate_nll, train_lesson_model, train_model

from .dream import dream, predict_next, sample_mixture
from .plots import plot_predicted_mixture, plot_training_curve, plot_trajectories
from .architectures import FeedForwardMDN, TransformerMDN
from .horizons import horizon_distance, wasserstein_1
from .memory_world import generate_memory_world_data, memory_world_bayes_nll
from .temperature import branch_report, temperature_nll_curve, tempered_log_params
from .control import (ForkWorld, LinearController, Task, cliff_task, dream_rollouts, fork_road_task,
                      real_rollouts)
from .cma_training import dream_and_real_scores, evaluate_controller, train_in_dream, train_in_world
from .pixel_world import PIXEL_WORLD, PixelWorldSpec, locate_car, render, world_frame_error
from .vae import FrameVAE, kl_to_standard_normal, train_lesson_vae, train_vae
from .latent_memory import encode_sequences, latent_floor, latents_to_states, train_memory_on_latents

__version__ = "0.1.0"
