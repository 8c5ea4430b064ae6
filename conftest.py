"""Strict numerics for every test and doctest: float64 available, rank promotion raises,
warnings are errors (pyproject.toml)."""

import importlib.util

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _seeded_numpy():
  import numpy as np

  np.random.seed(0)


# The framework layers are optional extras: skip their doctests where the framework is absent.
collect_ignore = [
    path
    for module, path in (("flax", "jaxup/flax.py"), ("flax", "jaxup/nnx.py"),
                         ("haiku", "jaxup/haiku.py"), ("equinox", "jaxup/equinox.py"))
    if importlib.util.find_spec(module) is None
]
# The Sphinx configuration and the figure script are not library modules; a local build's
# output is not a source.
collect_ignore += ["docs/conf.py", "docs/make_figures.py", "docs/_build"]
