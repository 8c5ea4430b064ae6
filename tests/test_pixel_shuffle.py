"""Tests for pixel_shuffle / pixel_unshuffle: hand tables, PyTorch and ONNX-spec reshape-transpose
references, the inverse-permutation adjoint, and the jit / vmap / layout / dtype properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from jaxup import pixel_shuffle, pixel_unshuffle
from jaxup import testing
from tests.helpers import assert_jit_eager_vmap, grid_size, random

# Jitted once per static configuration: one compile each instead of one per eager primitive.
_STATIC = ("factor", "order", "layout")
shuffle_jit = jax.jit(pixel_shuffle, static_argnames=_STATIC)
unshuffle_jit = jax.jit(pixel_unshuffle, static_argnames=_STATIC)

LAYOUTS = {
    1: ("NWC", "NCW", "WC", "CW"),
    2: ("NHWC", "NCHW", "HWC", "CHW", "WCNH"),
    3: ("NDHWC", "NCDHW", "DHWC"),
}


def _reference(x, factors, order, layout, inverse=False):
  """Depth to space (or back) by reshape and transpose on [N, C, *spatial], following the ONNX
  DepthToSpace spec (DCR: channels split as (s_1, ..., s_k, C); CRD: (C, s_1, ..., s_k)),
  generalised to k spatial axes. Other layouts are moved to [N, C, *spatial] and back."""
  x = np.asarray(x)
  if "N" not in layout:
    return _reference(x[None], factors, order, "N" + layout, inverse)[0]
  spatial_axes = [i for i, c in enumerate(layout) if c not in "NC"]
  to_first = [layout.index("N"), layout.index("C")] + spatial_axes
  xf = np.transpose(x, to_first)
  n, c, *spatial = xf.shape
  k, f, block = len(spatial), list(factors), int(np.prod(factors))
  if not inverse:
    inner = c // block
    if order == "CRD":  # axes: n, c, offsets 2..1+k, spatial 2+k..
      t = xf.reshape(n, inner, *f, *spatial)
      perm = [0, 1] + [a for i in range(k) for a in (2 + k + i, 2 + i)]
    else:  # axes: n, offsets 1..k, c at 1+k, spatial 2+k..
      t = xf.reshape(n, *f, inner, *spatial)
      perm = [0, 1 + k] + [a for i in range(k) for a in (2 + k + i, 1 + i)]
    y = np.transpose(t, perm).reshape(n, inner, *[m * s for m, s in zip(spatial, f)])
  else:  # axes: n, c, then (space_i, offset_i) at (2 + 2i, 3 + 2i)
    small = [m // s for m, s in zip(spatial, f)]
    t = xf.reshape(n, c, *[v for pair in zip(small, f) for v in pair])
    offsets, spaces = [3 + 2 * i for i in range(k)], [2 + 2 * i for i in range(k)]
    perm = [0, 1] + offsets + spaces if order == "CRD" else [0] + offsets + [1] + spaces
    y = np.transpose(t, perm).reshape(n, c * block, *small)
  return np.transpose(y, np.argsort(to_first))


def _random_config(rng):
  k = int(rng.integers(1, 4))
  layout = LAYOUTS[k][int(rng.integers(len(LAYOUTS[k])))]
  factors = tuple(int(rng.integers(1, 4)) for _ in range(k))
  shape = []
  for c in layout:
    if c == "N":
      shape.append(int(rng.integers(1, 3)))
    elif c == "C":
      shape.append(int(rng.integers(1, 3)) * int(np.prod(factors)))
    else:
      shape.append(int(rng.integers(1, 4)))
  return tuple(shape), factors, layout


# -- hand-computed expectations ------------------------------------------------------------

def test_one_channel_block_both_orders():
  x = jnp.array([[[1, 2, 3, 4]]], jnp.int32)  # HWC, one pixel of four channels
  for order in ("CRD", "DCR"):
    y = pixel_shuffle(x, 2, order=order, layout="HWC")
    assert y.dtype == jnp.int32
    assert y[..., 0].tolist() == [[1, 2], [3, 4]]
    assert pixel_unshuffle(y, 2, order=order, layout="HWC").tolist() == x.tolist()


def test_two_channel_tables():
  x = jnp.arange(8).reshape(1, 1, 8)
  # CRD: input channel c * 4 + i * 2 + j; DCR: (i * 2 + j) * 2 + c.
  assert pixel_shuffle(x, 2, layout="HWC").tolist() == [[[0, 4], [1, 5]], [[2, 6], [3, 7]]]
  assert pixel_shuffle(x, 2, order="DCR", layout="HWC").tolist() == [
      [[0, 1], [2, 3]], [[4, 5], [6, 7]]]
  # The same in NCHW, as torch.nn.PixelShuffle(2) prints it for channels 0..7.
  chw = jnp.arange(8).reshape(1, 8, 1, 1)
  assert pixel_shuffle(chw, 2, layout="NCHW")[0].tolist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]


def test_1d_and_3d_tables():
  x = jnp.array([[[10, 11, 12, 13], [20, 21, 22, 23]]])  # NWC, W = 2, 4 channels, factor 2
  assert pixel_shuffle(x, 2, layout="NWC")[0].tolist() == [[10, 12], [11, 13], [20, 22], [21, 23]]
  assert pixel_shuffle(x, 2, order="DCR", layout="NWC")[0].tolist() == [[10, 11], [12, 13], [20, 21], [22, 23]]
  v = jnp.arange(8).reshape(1, 1, 1, 1, 8)  # NDHWC, one voxel of 8 channels, factor 2
  y = pixel_shuffle(v, 2)
  assert y.shape == (1, 2, 2, 2, 1)
  assert y[0, :, :, :, 0].reshape(-1).tolist() == list(range(8))  # offset (d, h, w) row-major
  y = pixel_shuffle(jnp.arange(6).reshape(1, 1, 1, 6), (3, 2))  # per-axis factors
  assert y[0, :, :, 0].tolist() == [[0, 1], [2, 3], [4, 5]]


def test_factor_one_is_identity_and_zero_size():
  x = random((2, 3, 4, 5))
  np.testing.assert_array_equal(pixel_shuffle(x, 1), x)
  np.testing.assert_array_equal(pixel_unshuffle(x, 1, order="DCR"), x)
  assert pixel_shuffle(jnp.zeros((0, 2, 3, 8)), 2).shape == (0, 4, 6, 2)
  assert pixel_shuffle(jnp.zeros((1, 2, 3, 0)), 2).shape == (1, 4, 6, 0)
  assert pixel_unshuffle(jnp.zeros((1, 0, 4, 2)), 2).shape == (1, 0, 2, 8)


# -- references --------------------------------------------------------------------------

def test_matches_reshape_transpose_reference_on_random_grid():
  rng = np.random.default_rng(0)
  configs = [_random_config(rng) for _ in range(grid_size(24))]
  for shape, factors, layout in configs:
    x = random(shape, np.float32, seed=len(shape))
    factor = factors[0] if len(set(factors)) == 1 else factors
    for order in ("CRD", "DCR"):
      msg = f"{shape} {factors} {layout} {order}"
      y = shuffle_jit(x, factor, order=order, layout=layout)
      np.testing.assert_array_equal(y, _reference(x, factors, order, layout), err_msg=msg)
      back = unshuffle_jit(y, factor, order=order, layout=layout)
      np.testing.assert_array_equal(back, _reference(y, factors, order, layout, inverse=True),
                                    err_msg=msg)
      np.testing.assert_array_equal(back, x, err_msg=msg)


def test_matches_torch_pixel_shuffle_and_unshuffle():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(1)
  count = 0
  for _ in range(10):
    s = int(rng.integers(1, 4))
    n, c, h, w = (int(v) for v in rng.integers(1, 4, size=4))
    x = np.asarray(random((n, c * s * s, h, w), np.float32, seed=count))
    expected = torch.nn.functional.pixel_shuffle(torch.tensor(x), s).numpy()
    np.testing.assert_array_equal(shuffle_jit(x, s, layout="NCHW"), expected)
    # Channels-last gives the same numbers, transposed.
    nhwc = shuffle_jit(np.transpose(x, (0, 2, 3, 1)), s)
    np.testing.assert_array_equal(nhwc, np.transpose(expected, (0, 2, 3, 1)))
    back = torch.nn.functional.pixel_unshuffle(torch.tensor(expected), s).numpy()
    np.testing.assert_array_equal(unshuffle_jit(expected, s, layout="NCHW"), back)
    count += 1
  # Unbatched CHW, which torch also accepts.
  x = np.asarray(random((8, 2, 3), np.float32))
  np.testing.assert_array_equal(
      shuffle_jit(x, 2, layout="CHW"),
      torch.nn.functional.pixel_shuffle(torch.tensor(x), 2).numpy())


def test_dcr_matches_onnx_depth_to_space_spec():
  # ONNX DepthToSpace, mode="DCR", written out from the operator's specification.
  x = np.asarray(random((2, 12, 3, 4)))
  b, c, h, w = x.shape
  bs = 2
  tmp = np.reshape(x, [b, bs, bs, c // bs**2, h, w])
  tmp = np.transpose(tmp, [0, 3, 4, 1, 5, 2])
  expected = np.reshape(tmp, [b, c // bs**2, h * bs, w * bs])
  np.testing.assert_array_equal(pixel_shuffle(x, 2, order="DCR", layout="NCHW"), expected)
  # And mode="CRD".
  tmp = np.reshape(x, [b, c // bs**2, bs, bs, h, w])
  tmp = np.transpose(tmp, [0, 1, 4, 2, 5, 3])
  expected = np.reshape(tmp, [b, c // bs**2, h * bs, w * bs])
  np.testing.assert_array_equal(pixel_shuffle(x, 2, order="crd", layout="NCHW"), expected)


def test_dcr_matches_tensorflow_depth_to_space_formula():
  # tf.nn.depth_to_space on NHWC: out[n, h*s + i, w*s + j, c] = x[n, h, w, (i*s + j)*C + c].
  x = np.asarray(random((2, 3, 2, 3 * 9)))
  s, cout = 3, 3
  out = np.empty((2, 9, 6, cout))
  for h, w, i, j, c in np.ndindex(3, 2, s, s, cout):
    out[:, h * s + i, w * s + j, c] = x[:, h, w, (i * s + j) * cout + c]
  np.testing.assert_array_equal(pixel_shuffle(x, 3, order="DCR"), out)


# -- properties --------------------------------------------------------------------------

@pytest.mark.parametrize("order", ["CRD", "DCR"])
@pytest.mark.parametrize("shape,factors,layout", [
    ((2, 3, 6), (3,), "NWC"),
    ((2, 8, 2, 3), (2, 2), "NCHW"),
    ((3, 2, 6), (3, 1), "HWC"),
    ((1, 2, 1, 2, 12), (1, 2, 3), "NDHWC"),
])
def test_transpose_is_unshuffle(shape, factors, layout, order):
  x = random(shape)
  up = lambda v: pixel_shuffle(v, factors, order=order, layout=layout)
  down = lambda y: pixel_unshuffle(y, factors, order=order, layout=layout)
  testing.assert_adjoint(up, down, x)
  y = random(jax.eval_shape(up, x).shape, seed=3)
  (transposed,) = jax.linear_transpose(up, x)(y)
  np.testing.assert_array_equal(transposed, down(y))
  (transposed_back,) = jax.linear_transpose(down, y)(x)
  np.testing.assert_array_equal(transposed_back, up(x))


def test_check_grads_second_order():
  check_grads(jax.jit(lambda v: pixel_shuffle(v, 2) ** 2), (random((1, 2, 3, 8)),), order=2,
              modes=("fwd", "rev"))
  check_grads(jax.jit(lambda v: jnp.sin(pixel_unshuffle(v, (2, 1), order="DCR", layout="NCHW"))),
              (random((2, 2, 4, 3)),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("layout,shape", [
    ("NWC", (3, 4, 4)), ("NCHW", (3, 8, 2, 3)), ("NHWC", (3, 2, 3, 4)), ("NCDHW", (2, 8, 1, 2, 2)),
])
def test_jit_eager_vmap(layout, shape):
  batch = layout.index("N")
  assert_jit_eager_vmap(lambda v: pixel_shuffle(v, 2, layout=layout), random(shape),
                        batch_axis=batch)
  assert_jit_eager_vmap(lambda v: pixel_unshuffle(v, 1, order="DCR", layout=layout),
                        random(shape), batch_axis=batch)
  big = jax.eval_shape(lambda v: pixel_shuffle(v, 2, layout=layout), random(shape)).shape
  assert_jit_eager_vmap(lambda v: pixel_unshuffle(v, 2, order="DCR", layout=layout),
                        random(big), batch_axis=batch)


def test_layouts_agree():
  x = random((2, 3, 4, 12))
  for order in ("CRD", "DCR"):
    nhwc = shuffle_jit(x, (2, 3), order=order)
    nchw = shuffle_jit(jnp.transpose(x, (0, 3, 1, 2)), (2, 3), order=order, layout="NCHW")
    np.testing.assert_array_equal(jnp.transpose(nchw, (0, 2, 3, 1)), nhwc)
    hwc = jax.vmap(lambda v: shuffle_jit(v, (2, 3), order=order, layout="HWC"))(x)
    np.testing.assert_array_equal(hwc, nhwc)
    # 1-D NWC is 2-D with height one and factor 1 along it.
    np.testing.assert_array_equal(shuffle_jit(x[:, 0], 3, order=order, layout="NWC"),
                                  shuffle_jit(x[:, :1], (1, 3), order=order)[:, 0])
    # 3-D NDHWC with depth factor 1 is 2-D NHWC per depth slice.
    v = random((2, 3, 2, 2, 12))
    np.testing.assert_array_equal(shuffle_jit(v, (1, 2, 3), order=order)[:, 1],
                                  shuffle_jit(v[:, 1], (2, 3), order=order))


@pytest.mark.parametrize("dtype", [
    jnp.bool_, jnp.int8, jnp.uint8, jnp.int32, jnp.float16, jnp.bfloat16, jnp.float64,
    jnp.complex64,
])
def test_dtype_kept(dtype):
  x = np.asarray(np.random.default_rng(2).integers(0, 4, size=(2, 3, 2, 8))).astype(dtype)
  y = pixel_shuffle(x, 2, order="DCR")
  assert y.dtype == jnp.dtype(dtype)
  np.testing.assert_array_equal(np.asarray(y), _reference(x, (2, 2), "DCR", "NHWC"))
  np.testing.assert_array_equal(np.asarray(pixel_unshuffle(y, 2, order="DCR")), x)


# -- errors ------------------------------------------------------------------------------

def test_channels_not_divisible():
  with pytest.raises(ValueError, match=r"channels=6 .*factor=2, product 2 \* 2 = 4"):
    pixel_shuffle(jnp.zeros((1, 2, 2, 6)), 2)
  with pytest.raises(ValueError, match=r"channels=4 .*factor=\(1, 2, 3\), product 1 \* 2 \* 3 = 6"):
    pixel_shuffle(jnp.zeros((1, 2, 2, 2, 4)), (1, 2, 3))
  with pytest.raises(ValueError, match=r"channels=3 .*layout 'NCW'.*factor=2, product 2 = 2"):
    pixel_shuffle(jnp.zeros((1, 3, 2)), 2, layout="NCW")


def test_spatial_not_divisible():
  with pytest.raises(ValueError, match=r"axis 2 \('W'\) of x.shape=\(1, 4, 3, 2\) has size 3, "
                     r"not divisible by 2 \(factor=2\)"):
    pixel_unshuffle(jnp.zeros((1, 4, 3, 2)), 2)


@pytest.mark.parametrize("order, error", [("RCD", ValueError), ("", ValueError),
                                          (None, TypeError), (1, TypeError)])
def test_unknown_order(order, error):
  for fn in (pixel_shuffle, pixel_unshuffle):
    with pytest.raises(error, match=r"order must be .*one of 'CRD', 'DCR', got"):
      fn(jnp.zeros((1, 2, 2, 4)), 2, order=order)


def test_order_is_case_insensitive():
  x = jnp.arange(8).reshape(1, 1, 1, 8)
  for fn in (pixel_shuffle, pixel_unshuffle):
    args = (x, 2) if fn is pixel_shuffle else (pixel_shuffle(x, 2, order="DCR"), 2)
    np.testing.assert_array_equal(fn(*args, order="dcr"), fn(*args, order="DCR"))


@pytest.mark.parametrize("factor,error,match", [
    (0, ValueError, r"factor must be a positive int, got 0"),
    (-1, ValueError, r"factor must be a positive int, got -1"),
    ((2, 0), ValueError, r"factor must be a positive int, got 0"),
    ((2,), ValueError, r"factor must be an int or a sequence of 2 ints \(one per spatial axis\), got \(2,\) of length 1"),
    (2.0, TypeError, r"factor must be an int, got 2.0"),
])
def test_bad_factor(factor, error, match):
  for fn in (pixel_shuffle, pixel_unshuffle):
    with pytest.raises(error, match=match):
      fn(jnp.zeros((1, 2, 2, 4)), factor)


def test_layout_needs_channels():
  with pytest.raises(ValueError, match=r"layout must contain a channel axis 'C', got 'NHW'"):
    pixel_shuffle(jnp.zeros((1, 2, 2)), 2, layout="NHW")
