"""Gradescope: the autograder bundle (``bundle``, with its two scripts as package data), the container's
entry point (``autograder``, run by ``run_autograder``) and Gradescope's results format (``results``)."""
