"""Tests for bed_of_nails: the worked example, strided-assignment and interior-padding references,
the strided-subsampling adjoint, and the jit / vmap / layout / dtype properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

from jaxup import bed_of_nails, upsample_nearest
from jaxup import testing
from tests.helpers import (assert_jit_eager_vmap, grid_size, random, random_factor_config,
                           spatial_axes)

# Jitted once per static configuration: one compile each instead of one per eager primitive.
bed_of_nails_jit = jax.jit(bed_of_nails, static_argnames=("factor", "layout"))




def _strides(ndim, factors, layout):
  """The index ``[..., ::s_H, ::s_W, ...]`` that picks the nails."""
  index = [slice(None)] * ndim
  for axis, s in zip(spatial_axes(layout), factors):
    index[axis] = slice(None, None, s)
  return tuple(index)


def _assignment_reference(x, factors, layout):
  """Zeros of the output's size with x written at every factor-th position."""
  x = np.asarray(x)
  shape = list(x.shape)
  for axis, s in zip(spatial_axes(layout), factors):
    shape[axis] *= s
  y = np.zeros(shape, x.dtype)
  y[_strides(x.ndim, factors, layout)] = x
  return y


def _interior_pad_reference(x, factors, layout):
  """lax.pad's interior padding with factor - 1 trailing zeros."""
  config = [(0, 0, 0)] * x.ndim
  for axis, s in zip(spatial_axes(layout), factors):
    config[axis] = (0, s - 1, s - 1)
  return lax.pad(x, jnp.zeros((), x.dtype), config)



# -- hand-computed expectations ------------------------------------------------------------

def test_worked_example():
  x = jnp.array([[1, 2], [3, 4]], jnp.int32)
  expected = [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]
  y = bed_of_nails(x, 2, layout="HW")
  assert y.dtype == jnp.int32
  assert y.tolist() == expected
  assert bed_of_nails(x[None, :, :, None], 2)[0, :, :, 0].tolist() == expected
  assert bed_of_nails(x[None, None], 2, layout="NCHW")[0, 0].tolist() == expected


def test_per_axis_factors_1d_and_3d():
  x = jnp.array([[[1], [2]]])  # NWC
  assert bed_of_nails(x, 3, layout="NWC")[0, :, 0].tolist() == [1, 0, 0, 2, 0, 0]
  x = jnp.array([[1, 2]])
  assert bed_of_nails(x, (2, 1), layout="HW").tolist() == [[1, 2], [0, 0]]
  v = jnp.arange(1, 9).reshape(1, 2, 2, 2, 1)
  y = bed_of_nails(v, (1, 2, 3))
  assert y.shape == (1, 2, 4, 6, 1)
  assert y[0, 1, 2, 3, 0] == v[0, 1, 1, 1, 0]
  assert int(jnp.count_nonzero(y)) == 8


def test_factor_one_is_identity_and_zero_size_stays_empty():
  x = random((2, 3, 5, 4))
  np.testing.assert_array_equal(bed_of_nails(x, 1), x)
  assert bed_of_nails(jnp.zeros((2, 0, 3, 4)), 2).shape == (2, 0, 6, 4)
  assert bed_of_nails(jnp.zeros((0, 2, 3, 4)), (2, 3)).shape == (0, 4, 9, 4)


def test_special_values_stay_in_place():
  x = jnp.array([[jnp.nan, -jnp.inf], [-0.0, 1.0]])
  y = np.asarray(bed_of_nails(x, 2, layout="HW"))
  np.testing.assert_array_equal(y[::2, ::2], x)
  assert np.signbit(y[2, 0])  # -0.0 kept
  mask = np.ones_like(y, bool)
  mask[::2, ::2] = False
  assert np.all(y[mask] == 0) and not np.any(np.signbit(y[mask]))


# -- references --------------------------------------------------------------------------

def test_matches_references_on_random_grid():
  rng = np.random.default_rng(0)
  configs = [random_factor_config(rng) for _ in range(grid_size(40))]
  for shape, factors, layout in configs:
    x = random(shape, np.float32, seed=len(shape))
    factor = factors[0] if len(set(factors)) == 1 else factors
    y = bed_of_nails_jit(x, factor, layout=layout)
    msg = f"{shape} {factors} {layout}"
    np.testing.assert_array_equal(y, _assignment_reference(x, factors, layout), err_msg=msg)
    np.testing.assert_array_equal(y, _interior_pad_reference(x, factors, layout), err_msg=msg)
  # The random grid reaches every spatial rank and the size-1 edge case.
  assert {len(factors) for _, factors, _ in configs} == {1, 2, 3}
  assert any(1 in shape for shape, _, _ in configs) and any(1 in f for _, f, _ in configs)


def test_is_nearest_masked_to_the_top_left():
  x = random((2, 3, 4, 2))
  up = np.asarray(upsample_nearest(x, (3, 2)))
  mask = np.zeros(up.shape, bool)
  mask[:, ::3, ::2] = True
  np.testing.assert_array_equal(bed_of_nails(x, (3, 2)), np.where(mask, up, 0))


def test_matches_torch_strided_assignment():
  torch = pytest.importorskip("torch")
  # The zero-insertion PyTorch users write by hand: out[..., ::s, ::s] = x.
  x = np.asarray(random((2, 3, 4, 5), np.float32))
  out = torch.zeros(2, 3, 8, 15)
  out[:, :, ::2, ::3] = torch.tensor(x)
  np.testing.assert_array_equal(bed_of_nails(x, (2, 3), layout="NCHW"), out.numpy())


# -- properties --------------------------------------------------------------------------

@pytest.mark.parametrize("shape,factors,layout", [
    ((2, 5, 3), (3,), "NWC"),
    ((2, 3, 4, 5), (2, 3), "NCHW"),
    ((3, 2, 4), (2, 2), "HWC"),
    ((1, 2, 3, 2, 2), (2, 1, 3), "NDHWC"),
])
def test_transpose_is_strided_subsampling(shape, factors, layout):
  x = random(shape)
  up = lambda v: bed_of_nails(v, factors, layout=layout)
  down = lambda y: y[_strides(y.ndim, factors, layout)]
  testing.assert_adjoint(up, down, x)
  y = random(jax.eval_shape(up, x).shape, seed=3)
  (transposed,) = jax.linear_transpose(up, x)(y)
  np.testing.assert_array_equal(transposed, down(y))


def test_check_grads_second_order():
  check_grads(jax.jit(lambda v: bed_of_nails(v, (2, 3))), (random((2, 3, 2, 2)),), order=2,
              modes=("fwd", "rev"))
  check_grads(jax.jit(lambda v: jnp.sin(bed_of_nails(v, 2, layout="NCW"))),
              (random((2, 2, 3)),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("layout,shape", [
    ("NWC", (3, 4, 2)), ("NCHW", (3, 2, 3, 4)), ("NHWC", (3, 3, 4, 2)), ("NCDHW", (2, 2, 2, 3, 2)),
])
def test_jit_eager_vmap(layout, shape):
  fn = lambda v: bed_of_nails(v, 2, layout=layout)
  assert_jit_eager_vmap(fn, random(shape), batch_axis=layout.index("N"))


def test_layouts_agree():
  x = random((2, 3, 4, 5))
  nhwc = bed_of_nails(x, (2, 3))
  nchw = bed_of_nails(jnp.transpose(x, (0, 3, 1, 2)), (2, 3), layout="NCHW")
  np.testing.assert_array_equal(jnp.transpose(nchw, (0, 2, 3, 1)), nhwc)
  hwc = jax.vmap(lambda v: bed_of_nails(v, (2, 3), layout="HWC"))(x)
  np.testing.assert_array_equal(hwc, nhwc)
  np.testing.assert_array_equal(bed_of_nails(x[:, 0], 3, layout="NWC"), bed_of_nails(x[:, :1], (1, 3))[:, 0])
  v = random((2, 3, 4, 5, 2))
  np.testing.assert_array_equal(bed_of_nails(v, (1, 2, 3))[:, 1], bed_of_nails(v[:, 1], (2, 3)))


@pytest.mark.parametrize("dtype", [
    jnp.bool_, jnp.int8, jnp.uint8, jnp.int32, jnp.int64, jnp.float16, jnp.bfloat16,
    jnp.float32, jnp.float64, jnp.complex64,
])
def test_dtype_kept_with_its_zero(dtype):
  x = np.asarray(np.random.default_rng(2).integers(1, 4, size=(2, 3, 2, 3))).astype(dtype)
  y = bed_of_nails(x, (2, 3))
  assert y.dtype == jnp.dtype(dtype)
  np.testing.assert_array_equal(np.asarray(y), _assignment_reference(x, (2, 3), "NHWC"))


# -- errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("factor,error,match", [
    (0, ValueError, r"factor must be a positive int, got 0"),
    ((2, -1), ValueError, r"factor must be a positive int, got -1"),
    ((2,), ValueError, r"factor must be an int or a sequence of 2 ints \(one per spatial axis\), got \(2,\) of length 1"),
    (1.5, TypeError, r"factor must be an int, got 1.5"),
])
def test_bad_factor(factor, error, match):
  with pytest.raises(error, match=match):
    bed_of_nails(jnp.zeros((1, 2, 2, 1)), factor)


def test_bad_layout():
  with pytest.raises(ValueError, match=r"layout must have 5 letters, .* got 'NCHW'"):
    bed_of_nails(jnp.zeros((1, 1, 2, 2, 1)), 2, layout="NCHW")
  with pytest.raises(ValueError, match=r"layout must use each letter once .* got 'NHHC'"):
    bed_of_nails(jnp.zeros((1, 2, 2, 1)), 2, layout="NHHC")
