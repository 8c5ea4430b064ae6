"""Strict numerics for every test and doctest: float64 available, rank promotion raises,
warnings are errors (pyproject.toml)."""

import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True)
def _seeded_numpy():
  import numpy as np

  np.random.seed(0)
