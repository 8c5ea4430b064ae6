"""The backward pass of resize's per-axis resampling: a gather over a static inverse table
(the transposed taps) and a weighted sum, never a scatter-add."""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from jaxup._src import resize as resize_module
from tests.helpers import random

def _has_scatter(hlo_text):
  """Whether compiled HLO text has a scatter instruction (not just the word in metadata)."""
  return re.search(r"\bscatter\(", hlo_text) is not None


CASES = [
    dict(size=(17, 5), method="linear"),
    dict(size=(6, 13), method="cubic", align_corners=True),
    dict(size=(5, 11), method="lanczos3", antialias=True),
    dict(size=(3, 2), method="lanczos5", antialias=True),  # wide: the forward loops its taps
    dict(size=(14, 14), method="nearest"),
    dict(size=(4, 9), method="area"),
    dict(size=(5, 3), method="area-overlap"),
]


def _through_the_gathers(x, plan):
  """The previous formulation: each axis' gathers as plain jnp code, whose autodiff
  backward is a scatter-add of the gathers' cotangents (kept here for comparison)."""
  if resize_module._is_identity(plan):
    return x
  table = resize_module._Table(np.clip(plan.taps, 0, plan.in_size - 1), plan.weights,
                               plan.in_size)
  return resize_module._gather_sum(x, table=table, axis=plan.axis)


@pytest.mark.parametrize("options", CASES, ids=lambda o: o["method"])
def test_backward_equals_the_scatter_backward(options, monkeypatch):
  x = random((2, 9, 7, 3))
  f = lambda v: jaxup.resize(v, **options)
  ct = random(f(x).shape, seed=1)
  got = jax.vjp(f, x)[1](ct)[0]
  # linear_transpose and the VJP are the same map; jvp is the map itself.
  (transposed,) = jax.linear_transpose(f, x)(ct)
  np.testing.assert_allclose(transposed, got, rtol=1e-12, atol=1e-12)
  tangent_in = random(x.shape, seed=2)
  _, tangent = jax.jvp(f, (x,), (tangent_in,))
  np.testing.assert_allclose(tangent, f(tangent_in), rtol=1e-12, atol=1e-12)
  monkeypatch.setattr(resize_module, "_gather_axis", _through_the_gathers)
  before = jax.vjp(f, x)[1](ct)[0]
  hlo = jax.jit(lambda c: jax.vjp(f, x)[1](c)[0]).lower(ct).compile().as_text()
  assert _has_scatter(hlo)  # the comparison is with the scatter-add backward
  np.testing.assert_allclose(got, before, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method, image_method", [("linear", "linear"), ("cubic", "cubic"),
                                                  ("lanczos3", "lanczos3")])
def test_backward_equals_jax_image(method, image_method):
  x = random((2, 12, 10, 3))
  options = dict(method=method, antialias=True, exclude_outside=True)
  if method == "cubic":
    options["cubic_coeff_a"] = -0.5
  for size in ((5, 23), (24, 4)):
    ct = random((2,) + size + (3,), seed=3)
    got = jax.vjp(lambda v: jaxup.resize(v, size, **options), x)[1](ct)[0]
    expected = jax.vjp(lambda v: jax.image.resize(v, (2,) + size + (3,), image_method), x)[1](ct)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def _grad_hlo(options, shape=(2, 32, 32, 3)):
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  ct = jnp.ones((shape[0],) + tuple(options["size"]) + (shape[-1],), jnp.float32)
  grad = jax.jit(jax.grad(lambda v: jnp.sum(jaxup.resize(v, **options) * ct)))
  return grad.lower(x).compile()


@pytest.mark.parametrize("options", [dict(size=(64, 48), method="linear"),
                                     dict(size=(20, 70), method="lanczos3", antialias=True),
                                     dict(size=(8, 8), method="lanczos5", antialias=True),
                                     dict(size=(64, 64), method="nearest")],
                         ids=lambda o: o["method"])
def test_compiled_backward_has_no_scatter(options):
  assert not _has_scatter(_grad_hlo(options).as_text())


def test_vmap_and_grad_compose():
  x = random((3, 2, 8, 6, 1))
  f = lambda v: jnp.sum(jaxup.resize(v, (5, 11), method="lanczos3") ** 2)
  per_item = jax.vmap(jax.grad(f))(x)
  for i in range(3):
    np.testing.assert_allclose(per_item[i], jax.grad(f)(x[i]), rtol=1e-12, atol=1e-12)
  # The transposed table's transpose is the forward table.
  table = resize_module._Table(np.array([[0, 1], [1, 2], [2, 2]]), np.array(
      [[0.25, 0.75], [0.5, 0.5], [1.0, 0.0]]), 3)
  assert table.transposed().transposed() == table
  assert table.transposed().taps.tolist() == [[0, 0], [0, 1], [1, 2]]
  assert table.transposed().weights.tolist() == [[0.25, 0.0], [0.75, 0.5], [0.5, 1.0]]


@functools.lru_cache(maxsize=None)
def _backward_cost(which):
  """(bytes accessed, temp bytes) of the compiled gradient of <resize(x), g> (x and g both
  arguments, so nothing folds into constants): lanczos3 2x up, antialiased."""
  x = jax.ShapeDtypeStruct((4, 48, 48, 8), jnp.float32)
  g = jax.ShapeDtypeStruct((4, 96, 96, 8), jnp.float32)
  if which == "jaxup":
    f = lambda v: jaxup.resize(v, (96, 96), method="lanczos3", antialias=True)
  else:
    f = lambda v: jax.image.resize(v, (4, 96, 96, 8), "lanczos3")
  compiled = jax.jit(jax.grad(lambda v, c: jnp.vdot(f(v), c))).lower(x, g).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return cost["bytes accessed"], compiled.memory_analysis().temp_size_in_bytes


def test_backward_memory_within_jax_image():
  """The gather backward reads and keeps less than jax.image's dense-matrix backward."""
  ours, theirs = _backward_cost("jaxup"), _backward_cost("jax.image")
  assert ours[0] <= theirs[0] and ours[1] <= theirs[1], (ours, theirs)
