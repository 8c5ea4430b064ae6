"""Tests for upsample_nearest: the worked example, np.repeat / PyTorch / jax.image references,
the sum-pooling adjoint, and the jit / vmap / layout / dtype properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

from jaxup import upsample_nearest
from jaxup import testing
from tests.helpers import (assert_jit_eager_vmap, grid_size, random, random_factor_config,
                           spatial_axes)

# Layouts by number of spatial axes; the spatial letters are the axes np.repeat acts on.
# Jitted once per static configuration: one compile each instead of one per eager primitive.
upsample_nearest_jit = jax.jit(upsample_nearest, static_argnames=("factor", "layout"))

DEFAULT = {1: "NWC", 2: "NHWC", 3: "NDHWC"}



def _repeat_reference(x, factors, layout):
  """np.repeat along each spatial axis."""
  y = np.asarray(x)
  for axis, s in zip(spatial_axes(layout), factors):
    y = np.repeat(y, s, axis=axis)
  return y



# -- hand-computed expectations ------------------------------------------------------------

def test_worked_example_k_nearest_neighbours():
  x = jnp.array([[1, 2], [3, 4]], jnp.int32)
  expected = [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
  y = upsample_nearest(x, 2, layout="HW")
  assert y.dtype == jnp.int32
  assert y.tolist() == expected
  # The same table through the default NHWC layout and through PyTorch's NCHW.
  assert upsample_nearest(x[None, :, :, None], 2)[0, :, :, 0].tolist() == expected
  assert upsample_nearest(x[None, None], 2, layout="NCHW")[0, 0].tolist() == expected


def test_per_axis_factors_1d_and_3d():
  x = jnp.array([[[1], [2], [3]]])  # NWC, W = 3
  assert upsample_nearest(x, 3, layout="NWC")[0, :, 0].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3]
  x = jnp.array([[1, 2]])  # HW = (1, 2)
  assert upsample_nearest(x, (3, 1), layout="HW").tolist() == [[1, 2], [1, 2], [1, 2]]
  v = jnp.arange(8).reshape(1, 2, 2, 2, 1)  # NDHWC
  y = upsample_nearest(v, (1, 2, 3))
  assert y.shape == (1, 2, 4, 6, 1)
  assert y[0, 1, 3, 5, 0] == v[0, 1, 1, 1, 0]
  assert y[0, 0, 2, 2, 0] == v[0, 0, 1, 0, 0]


def test_factor_one_is_identity_and_zero_size_stays_empty():
  x = random((2, 3, 5, 4))
  np.testing.assert_array_equal(upsample_nearest(x, 1), x)
  assert upsample_nearest(jnp.zeros((2, 0, 3, 4)), 2).shape == (2, 0, 6, 4)
  assert upsample_nearest(jnp.zeros((0, 2, 3, 4)), (2, 3)).shape == (0, 4, 9, 4)


# -- references --------------------------------------------------------------------------

def test_matches_np_repeat_on_random_grid():
  rng = np.random.default_rng(0)
  configs = [random_factor_config(rng) for _ in range(grid_size(40))]
  for shape, factors, layout in configs:
    x = random(shape, np.float32, seed=len(shape))
    # Scalar factor when the factors agree, to cover both spellings.
    factor = factors[0] if len(set(factors)) == 1 else factors
    y = upsample_nearest_jit(x, factor, layout=layout)
    np.testing.assert_array_equal(y, _repeat_reference(x, factors, layout),
                                  err_msg=f"{shape} {factors} {layout}")
  # The random grid reaches every spatial rank and the size-1 edge case.
  assert {len(factors) for _, factors, _ in configs} == {1, 2, 3}
  assert any(1 in shape for shape, _, _ in configs) and any(1 in f for _, f, _ in configs)


def test_matches_einops_style_broadcast_reshape():
  # einops.repeat(x, "n h w c -> n (h s1) (w s2) c", s1=2, s2=3), spelled in NumPy.
  x = np.asarray(random((2, 3, 4, 5)))
  n, h, w, c = x.shape
  ref = np.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 3, c)).reshape(n, 2 * h, 3 * w, c)
  np.testing.assert_array_equal(upsample_nearest(x, (2, 3)), ref)


def test_matches_jax_image_resize_nearest():
  x = random((2, 5, 3, 4))
  y = jax.image.resize(x, (2, 15, 6, 4), method="nearest")
  np.testing.assert_array_equal(upsample_nearest(x, (3, 2)), y)


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_matches_torch_interpolate_at_integer_scales(mode):
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(1)
  count = 0
  for k, layout in ((1, "NCW"), (2, "NCHW"), (3, "NCDHW")):
    for _ in range(4):
      spatial = tuple(int(v) for v in rng.integers(1, 6, size=k))
      factors = tuple(int(v) for v in rng.integers(1, 5, size=k))
      x = np.asarray(random((2, 3) + spatial, np.float32, seed=count))
      t = torch.tensor(x)
      by_scale = torch.nn.functional.interpolate(
          t, scale_factor=tuple(float(s) for s in factors), mode=mode).numpy()
      by_size = torch.nn.functional.interpolate(
          t, size=tuple(n * s for n, s in zip(spatial, factors)), mode=mode).numpy()
      y = np.asarray(upsample_nearest_jit(x, factors, layout=layout))
      np.testing.assert_array_equal(y, by_scale, err_msg=f"{spatial} {factors}")
      np.testing.assert_array_equal(y, by_size, err_msg=f"{spatial} {factors}")
      count += 1


# -- properties --------------------------------------------------------------------------

def _sum_pool(y, factors, layout):
  """Non-overlapping sum pooling with window = stride = factor, by lax.reduce_window."""
  window = [1] * y.ndim
  for axis, s in zip(spatial_axes(layout), factors):
    window[axis] = s
  return lax.reduce_window(y, jnp.zeros((), y.dtype), lax.add, window, window, "VALID")


@pytest.mark.parametrize("shape,factors,layout", [
    ((2, 5, 3), (3,), "NWC"),
    ((2, 3, 4, 5), (2, 3), "NCHW"),
    ((3, 2, 4), (2, 2), "HWC"),
    ((1, 2, 3, 2, 2), (2, 1, 3), "NDHWC"),
])
def test_transpose_is_sum_pooling(shape, factors, layout):
  x = random(shape)
  up = lambda v: upsample_nearest(v, factors, layout=layout)
  down = lambda y: _sum_pool(y, factors, layout)
  testing.assert_adjoint(up, down, x)
  y = random(jax.eval_shape(up, x).shape, seed=3)
  (transposed,) = jax.linear_transpose(up, x)(y)
  np.testing.assert_allclose(transposed, down(y), rtol=1e-12)


def test_check_grads_second_order():
  x = random((2, 3, 2, 2))
  check_grads(jax.jit(lambda v: upsample_nearest(v, (2, 3))), (x,), order=2,
              modes=("fwd", "rev"))
  check_grads(jax.jit(lambda v: upsample_nearest(v, 2, layout="NCW") ** 2),
              (random((2, 2, 3)),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("layout,shape", [
    ("NWC", (3, 4, 2)), ("NCHW", (3, 2, 3, 4)), ("NHWC", (3, 3, 4, 2)), ("NCDHW", (2, 2, 2, 3, 2)),
])
def test_jit_eager_vmap(layout, shape):
  fn = lambda v: upsample_nearest(v, 2, layout=layout)
  assert_jit_eager_vmap(fn, random(shape), batch_axis=layout.index("N"))


def test_layouts_agree():
  x = random((2, 3, 4, 5))  # NHWC
  nhwc = upsample_nearest(x, (2, 3))
  nchw = upsample_nearest(jnp.transpose(x, (0, 3, 1, 2)), (2, 3), layout="NCHW")
  np.testing.assert_array_equal(jnp.transpose(nchw, (0, 2, 3, 1)), nhwc)
  hwc = jax.vmap(lambda v: upsample_nearest(v, (2, 3), layout="HWC"))(x)
  np.testing.assert_array_equal(hwc, nhwc)
  # 1-D NWC is 2-D with a height of one and factor 1 along it.
  np.testing.assert_array_equal(
      upsample_nearest(x[:, 0], 3, layout="NWC"), upsample_nearest(x[:, :1], (1, 3))[:, 0])
  # 3-D NDHWC with a depth factor of 1 acts on each depth slice like 2-D NHWC.
  v = random((2, 3, 4, 5, 2))
  np.testing.assert_array_equal(
      upsample_nearest(v, (1, 2, 3))[:, 1], upsample_nearest(v[:, 1], (2, 3)))


@pytest.mark.parametrize("dtype", [
    jnp.bool_, jnp.int8, jnp.uint8, jnp.int32, jnp.int64, jnp.float16, jnp.bfloat16,
    jnp.float32, jnp.float64, jnp.complex64,
])
def test_dtype_kept_and_values_copied(dtype):
  x = np.asarray(np.random.default_rng(2).integers(-3, 4, size=(2, 3, 2, 3))).astype(dtype)
  y = upsample_nearest(x, (2, 3))
  assert y.dtype == jnp.dtype(dtype)
  np.testing.assert_array_equal(np.asarray(y), _repeat_reference(x, (2, 3), "NHWC"))


def test_accepts_array_likes():
  assert upsample_nearest([[1, 2]], 2, layout="HW").tolist() == [[1, 1, 2, 2], [1, 1, 2, 2]]
  assert upsample_nearest(np.ones((1, 2, 1)), np.int64(2), layout="NWC").shape == (1, 4, 1)


# -- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("factor,error,match", [
    (0, ValueError, r"factor must be a positive int, got 0"),
    (-2, ValueError, r"factor must be a positive int, got -2"),
    ((2, 0), ValueError, r"factor must be a positive int, got 0"),
    ((2, 2, 2), ValueError, r"factor must be an int or a sequence of 2 ints \(one per spatial axis\), got \(2, 2, 2\) of length 3"),
    (2.0, TypeError, r"factor must be an int, got 2.0"),
    (True, TypeError, r"factor must be an int, got True"),
    ("2", TypeError, r"factor must be an int or a sequence of 2 ints, got '2'"),
])
def test_bad_factor(factor, error, match):
  with pytest.raises(error, match=match):
    upsample_nearest(jnp.zeros((1, 2, 2, 1)), factor)


def test_bad_layout():
  with pytest.raises(ValueError, match=r"layout must have 3 letters, .* got 'NHWC'"):
    upsample_nearest(jnp.zeros((2, 2, 1)), 2, layout="NHWC")
  with pytest.raises(ValueError, match=r"layout must be a layout string .* for an input of rank 2 .* got None"):
    upsample_nearest(jnp.zeros((2, 2)), 2)
  with pytest.raises(TypeError, match=r"layout must be a string"):
    upsample_nearest(jnp.zeros((1, 2, 1)), 2, layout=3)


def test_signature_is_keyword_only_after_factor():
  with pytest.raises(TypeError):
    upsample_nearest(jnp.zeros((1, 2, 1)), 2, "NWC")  # layout must be passed by keyword

