"""Test data and property checks shared by the test modules (adjoint checks and per-dtype
tolerances are public: jaxup.testing)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

# Random grids draw their cases from one fixed generator each; the README's command runs the
# first third of every grid (each still spans the grid's whole range), JAXUP_FULL_GRIDS=1 all of
# them, as a campaign before a release should.
FULL_GRIDS = os.environ.get("JAXUP_FULL_GRIDS", "") not in ("", "0")


def grid_size(full: int) -> int:
  """How many of a random grid's ``full`` cases this run checks."""
  return full if FULL_GRIDS else max(1, -(-full // 3))


def random(shape, dtype=np.float64, seed=0):
  """Standard normal test data of ``shape`` as a jax array of ``dtype``."""
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.standard_normal(shape), dtype=dtype)


def assert_jit_eager_vmap(fn, x, *, batch_axis=0, rtol=1e-12):
  """``fn`` gives the same result eagerly, under ``jit``, and under ``vmap`` over the batch.

  ``fn`` maps a batched array to a batched array whose batch axis is ``batch_axis``. The vmap
  check calls ``fn`` on single items with the batch axis restored by ``expand_dims``.
  """
  eager = fn(x)
  jitted = jax.jit(fn)(x)
  np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), rtol=rtol, atol=rtol)
  per_item = lambda xi: jnp.squeeze(fn(jnp.expand_dims(xi, batch_axis)), batch_axis)
  mapped = jax.vmap(per_item, in_axes=batch_axis, out_axes=batch_axis)(x)
  np.testing.assert_allclose(np.asarray(mapped), np.asarray(eager), rtol=rtol, atol=rtol)


# Layouts for operators that need no channel axis (nearest, bed of nails), by spatial rank.
FACTOR_LAYOUTS = {
    1: ("NWC", "NCW", "WC", "W"),
    2: ("NHWC", "NCHW", "HWC", "CHW", "HW", "WCNH"),
    3: ("NDHWC", "NCDHW", "DHWC"),
}


def spatial_axes(layout):
  """The positions of the spatial letters of ``layout``."""
  return [i for i, c in enumerate(layout) if c not in "NC"]


def random_factor_config(rng):
  """A random (shape, factors, layout) with small sizes, some of them odd or 1."""
  k = int(rng.integers(1, 4))
  layout = FACTOR_LAYOUTS[k][int(rng.integers(len(FACTOR_LAYOUTS[k])))]
  shape = tuple(int(rng.integers(1, 4)) if c in "NC" else int(rng.integers(1, 6)) for c in layout)
  factors = tuple(int(rng.integers(1, 4)) for _ in range(k))
  return shape, factors, layout
