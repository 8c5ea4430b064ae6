"""conv and conv_transpose: the worked examples, PyTorch parity, the VJP definition, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from jaxup import testing
from jaxup._src import lowering
from tests.helpers import assert_jit_eager_vmap, grid_size, random

# ----------------------------------------------------------------------------------------------
# The worked examples (the tour's tables).


def test_seed_conv_5x5x3_with_3x3x3_kernel_gives_3x3():
  x = jnp.arange(75.0).reshape(5, 5, 3)
  kernel = jnp.ones((3, 3, 3, 1))
  y = jaxup.conv(x, kernel, layout="HWC")
  assert y.shape == (3, 3, 1)
  # Each output is the sum of a 3x3x3 block.
  expected = np.array([[x[i:i + 3, j:j + 3].sum() for j in range(3)] for i in range(3)])
  np.testing.assert_array_equal(y[..., 0], expected)
  assert jaxup.conv_output_size((5, 5), (3, 3)) == (3, 3)


def test_seed_conv_transpose_2x2_kernel_of_fives():
  x = jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
  kernel = jnp.full((2, 2, 1, 1), 5.0)
  y = jaxup.conv_transpose(x, kernel)
  np.testing.assert_array_equal(
      y[0, :, :, 0], [[5, 15, 10], [20, 50, 30], [15, 35, 20]])
  assert y.shape[1:3] == jaxup.conv_transpose_output_size((2, 2), 2) == (3, 3)


def test_conv_transpose_scatters_kernel_copies_at_stride_positions():
  # Hand-computed: each input value stamps value * kernel at (i * stride - padding).
  x = jnp.array([1.0, 10.0]).reshape(1, 2, 1)
  kernel = jnp.array([1.0, 2.0, 3.0]).reshape(3, 1, 1)
  np.testing.assert_array_equal(
      jaxup.conv_transpose(x, kernel, stride=2)[0, :, 0], [1, 2, 13, 20, 30])
  np.testing.assert_array_equal(
      jaxup.conv_transpose(x, kernel, stride=2, padding=1)[0, :, 0], [2, 13, 20])
  np.testing.assert_array_equal(
      jaxup.conv_transpose(x, kernel, stride=2, padding=1, output_padding=1)[0, :, 0],
      [2, 13, 20, 30])
  np.testing.assert_array_equal(
      jaxup.conv_transpose(x, kernel, stride=3, dilation=2)[0, :, 0],
      [1, 0, 2, 10, 3, 20, 0, 30])


# ----------------------------------------------------------------------------------------------
# Output-size formulas.


@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, expected",
    [
        (5, 3, 1, 0, 1, 3),
        (7, 3, 2, 1, 1, 4),
        (8, 3, 2, 1, 1, 4),
        (10, 3, 1, 0, 3, 4),
        (6, 2, 2, (0, 1), 1, 3),
        (7, 4, 3, "SAME", 1, 3),
        (7, 4, 3, "VALID", 1, 2),
        ((5, 9), (3, 1), (1, 4), [(0, 1), 2], 1, (4, 4)),
    ],
)
def test_conv_output_size(size, kernel, stride, padding, dilation, expected):
  got = jaxup.conv_output_size(size, kernel, stride=stride, padding=padding, dilation=dilation)
  assert got == expected


@pytest.mark.parametrize(
    "size, kernel, stride, padding, output_padding, dilation, expected",
    [
        (2, 2, 1, 0, 0, 1, 3),
        (4, 3, 2, 1, 1, 1, 8),
        (4, 4, 2, 1, 0, 1, 8),
        (3, 3, 1, 0, 0, 2, 7),
        (3, 3, 2, (1, 0), 0, 1, 6),
        ((2, 3), (2, 3), (1, 2), 0, (0, 1), 1, (3, 8)),
    ],
)
def test_conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation,
                                    expected):
  got = jaxup.conv_transpose_output_size(size, kernel, stride=stride, padding=padding,
                                         output_padding=output_padding, dilation=dilation)
  assert got == expected


def test_output_size_formulas_invert_each_other():
  for size in range(1, 9):
    for k in range(1, 4):
      for s in range(1, 4):
        for p in range(0, 2):
          if size + 2 * p < k:
            continue  # the kernel does not fit
          out = jaxup.conv_output_size(size, k, stride=s, padding=p)
          if (out - 1) * s - 2 * p + k < 1:
            continue  # the padding alone covers the input: no positive transposed size
          back = jaxup.conv_transpose_output_size(out, k, stride=s, padding=p)
          # The transposed size is the smallest input size that maps to `out`.
          assert back <= size < back + s
          if back + 2 * p >= k:
            assert jaxup.conv_output_size(back, k, stride=s, padding=p) == out


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(size=2, kernel_size=5), r"dilated kernel \(5\) is larger than the padded input"),
        (dict(size=0, kernel_size=1), r"size must be a positive int, got 0"),
        (dict(size=4, kernel_size=2, stride=0), r"stride must be a positive int, got 0"),
        (dict(size=(4, 4), kernel_size=(2, 2, 2)), r"kernel_size must be .* sequence of 2 ints .* got \(2, 2, 2\) of length 3"),
        (dict(size=4, kernel_size=2, padding="FULL"), r"padding must be one of 'SAME', 'VALID', got 'FULL'"),
    ],
)
def test_conv_output_size_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    jaxup.conv_output_size(**kwargs)


def test_conv_transpose_output_size_rejects_string_padding():
  with pytest.raises(ValueError, match="needs explicit padding"):
    jaxup.conv_transpose_output_size(4, 3, padding="SAME")


# ----------------------------------------------------------------------------------------------
# Parity with PyTorch over a randomized grid.

torch_layouts = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}


def _to_layout(x_ncs, layout):
  """A channels-first numpy array moved to `layout` (NC... or N...C)."""
  return x_ncs if layout[1] == "C" else np.moveaxis(x_ncs, 1, -1)


def _from_layout(y, layout):
  y = np.asarray(y)
  return y if layout[1] == "C" else np.moveaxis(y, -1, 1)


@functools.lru_cache(maxsize=None)
def _jitted(fn_name, **static):
  fn = getattr(jaxup, fn_name)
  return jax.jit(lambda x, w: fn(x, w, **static))


def _hashable(v):
  return tuple(map(_hashable, v)) if isinstance(v, (list, tuple)) else v


def _random_config(rng, transpose):
  n = int(rng.integers(1, 4))
  groups = int(rng.choice([1, 1, 2, 3, 4]))
  c_in = groups * int(rng.integers(1, 3))
  c_out = groups * int(rng.integers(1, 3))
  k = tuple(int(v) for v in rng.integers(1, 4, n))
  s = tuple(int(v) for v in rng.integers(1, 4, n))
  d = tuple(int(v) for v in rng.integers(1, 4, n))
  sizes = tuple(int(v) for v in rng.integers(1, 8 if n < 3 else 6, n))
  if rng.random() < 0.3:  # asymmetric (lo, hi) pairs
    p = tuple((int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(n))
  else:
    p = tuple(int(v) for v in rng.integers(0, 3, n))
  op = tuple(int(rng.integers(0, max(si, di))) for si, di in zip(s, d)) if transpose else None
  layout = torch_layouts[n][int(rng.integers(0, 2))]
  dtype = np.float64 if rng.random() < 0.5 else np.float32
  return n, groups, c_in, c_out, k, s, d, sizes, p, op, layout, dtype


def _torch_conv(torch, n, x, w, s, p, d, groups):
  """PyTorch conv{n}d with asymmetric padding done by F.pad first."""
  F = torch.nn.functional
  pairs = [pi if isinstance(pi, tuple) else (pi, pi) for pi in p]
  flat = [v for lo_hi in reversed(pairs) for v in lo_hi]  # F.pad: last axis first
  x = F.pad(x, flat)
  return getattr(F, f"conv{n}d")(x, w, stride=s, dilation=d, groups=groups)


def _torch_conv_transpose(torch, n, x, w, s, p, op, d, groups):
  """PyTorch conv_transpose{n}d; asymmetric padding crops a padding-0 result."""
  F = torch.nn.functional
  fn = getattr(F, f"conv_transpose{n}d")
  if all(not isinstance(pi, tuple) for pi in p):
    return fn(x, w, stride=s, padding=p, output_padding=op, dilation=d, groups=groups)
  pairs = [pi if isinstance(pi, tuple) else (pi, pi) for pi in p]
  op_full = tuple(max(0, o - hi) for o, (_, hi) in zip(op, pairs))
  full = fn(x, w, stride=s, padding=0, output_padding=op_full, dilation=d, groups=groups)
  index = [slice(None), slice(None)]
  for axis, ((lo, hi), o) in enumerate(zip(pairs, op)):
    size = full.shape[2 + axis] - op_full[axis] - lo - hi + o
    index.append(slice(lo, lo + size))
  return full[tuple(index)]


def test_conv_matches_pytorch_on_a_random_grid():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(1)
  ran = 0
  while ran < grid_size(80):
    n, groups, c_in, c_out, k, s, d, sizes, p, _, layout, dtype = _random_config(rng, False)
    pairs = [pi if isinstance(pi, tuple) else (pi, pi) for pi in p]
    if any(sz + lo + hi < di * (ki - 1) + 1 for sz, (lo, hi), ki, di in zip(sizes, pairs, k, d)):
      with pytest.raises(ValueError, match="larger than the padded input"):
        jaxup.conv(jnp.zeros((2, *sizes, c_in)), jnp.zeros((*k, c_in // groups, c_out)),
                   stride=s, padding=p, dilation=d, groups=groups)
      continue
    x = rng.standard_normal((2, c_in, *sizes)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, *k)).astype(dtype)  # PyTorch OI*K
    expected = _torch_conv(torch, n, torch.from_numpy(x), torch.from_numpy(w), s, p, d, groups)
    kernel = np.moveaxis(w, (0, 1), (-1, -2))  # -> [*K, C_in // groups, C_out]
    fn = _jitted("conv", stride=s, padding=_hashable(p), dilation=d, groups=groups,
                 layout=layout)
    got = fn(jnp.asarray(_to_layout(x, layout)), jnp.asarray(kernel))
    assert got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(_from_layout(got, layout), expected.numpy(), rtol=tol, atol=tol,
                               err_msg=str((n, groups, k, s, d, sizes, p, layout)))
    ran += 1


def test_conv_transpose_matches_pytorch_on_a_random_grid():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(2)
  ran = 0
  while ran < grid_size(120):
    n, groups, c_in, c_out, k, s, d, sizes, p, op, layout, dtype = _random_config(rng, True)
    pairs = [pi if isinstance(pi, tuple) else (pi, pi) for pi in p]
    out = [(i - 1) * si - lo - hi + di * (ki - 1) + o + 1
           for i, si, (lo, hi), di, ki, o in zip(sizes, s, pairs, d, k, op)]
    x = rng.standard_normal((2, c_in, *sizes)).astype(dtype)
    w = rng.standard_normal((c_in, c_out // groups, *k)).astype(dtype)  # PyTorch ConvT weight
    kernel = np.moveaxis(w, (0, 1), (-1, -2))  # -> [*K, C_out // groups, C_in], no flip
    fn = _jitted("conv_transpose", stride=s, padding=_hashable(p), output_padding=op,
                 dilation=d, groups=groups, layout=layout)
    if min(out) < 1:
      with pytest.raises(ValueError, match="output size would be"):
        fn(jnp.asarray(_to_layout(x, layout)), jnp.asarray(kernel))
      continue
    expected = _torch_conv_transpose(torch, n, torch.from_numpy(x), torch.from_numpy(w), s, p,
                                     op, d, groups)
    got = fn(jnp.asarray(_to_layout(x, layout)), jnp.asarray(kernel))
    assert got.dtype == dtype
    tol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(_from_layout(got, layout), expected.numpy(), rtol=tol, atol=tol,
                               err_msg=str((n, groups, k, s, d, sizes, p, op, layout)))
    ran += 1


def test_every_valid_output_padding_matches_pytorch():
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(3)
  for s in (1, 2, 3):
    for d in (1, 2, 3):
      for op in range(max(s, d)):
        x = rng.standard_normal((1, 2, 4, 3))
        w = rng.standard_normal((2, 3, 3, 2))
        expected = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x), torch.from_numpy(w), stride=s, padding=1,
            output_padding=(op, 0), dilation=d)
        got = jaxup.conv_transpose(jnp.asarray(x), jnp.asarray(w).transpose(2, 3, 1, 0),
                                   stride=s, padding=1, output_padding=(op, 0), dilation=d,
                                   layout="NCHW")
        np.testing.assert_allclose(got, expected.numpy(), rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------------
# The definition: conv_transpose is the VJP of conv.

VJP_CASES = [
    # (spatial input of conv, kernel spatial, C_in, C_out, kwargs)
    ((9,), (3,), 2, 3, dict(stride=2, padding=1)),
    ((8, 7), (3, 2), 4, 6, dict(stride=(2, 3), padding=((1, 0), (2, 1)), dilation=(1, 2),
                                groups=2)),
    ((7, 7), (4, 4), 3, 2, dict(stride=2, padding="SAME")),
    ((6, 9), (3, 3), 2, 2, dict(stride=(3, 2), padding="VALID", dilation=2)),
    ((5, 6, 4), (2, 3, 2), 2, 4, dict(stride=(1, 2, 2), padding=(0, 1, 1), groups=2)),
]


@pytest.mark.parametrize("spatial, ksize, c_in, c_out, kwargs", VJP_CASES)
def test_conv_transpose_is_the_vjp_of_conv(spatial, ksize, c_in, c_out, kwargs):
  groups = kwargs.get("groups", 1)
  n = len(spatial)
  # The reference is JAX's own VJP of lax.conv_general_dilated, an input-dilated convolution:
  # float32, because XLA's CPU compiler aborts on some float64 ones (jaxup never emits one).
  z0 = random((2, *spatial, c_in), np.float32)
  kernel = random((*ksize, c_in // groups, c_out), np.float32, seed=3)
  padding = kwargs.get("padding", 0)
  if not isinstance(padding, str):
    padding = [p if isinstance(p, tuple) else (p, p)
               for p in (padding if isinstance(padding, tuple) else (padding,) * n)]
  stride, dilation = kwargs.get("stride", 1), kwargs.get("dilation", 1)
  lax_conv = lambda z: jax.lax.conv_general_dilated(
      z, kernel, stride if isinstance(stride, tuple) else (stride,) * n, padding,
      rhs_dilation=dilation if isinstance(dilation, tuple) else (dilation,) * n,
      feature_group_count=groups, dimension_numbers=lowering._CHANNELS_LAST[n])
  y, vjp = jax.vjp(lax_conv, z0)
  np.testing.assert_allclose(jaxup.conv(z0, kernel, **kwargs), y, rtol=1e-5, atol=1e-5)
  ct = random(y.shape, np.float32, seed=4)
  expected = vjp(ct)[0]
  got = jaxup.conv_transpose(ct, kernel, output_size=spatial, **kwargs)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  _, vjp_ours = jax.vjp(lambda z: jaxup.conv(z, kernel, **kwargs), z0)
  np.testing.assert_allclose(vjp_ours(ct)[0], expected, rtol=1e-5, atol=1e-5)
  transpose = jax.linear_transpose(lambda z: jaxup.conv(z, kernel, **kwargs), z0)
  np.testing.assert_allclose(got, transpose(ct)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial, ksize, c_in, c_out, kwargs", VJP_CASES)
def test_conv_and_conv_transpose_are_adjoint(spatial, ksize, c_in, c_out, kwargs):
  groups = kwargs.get("groups", 1)
  kernel = random((*ksize, c_in // groups, c_out), seed=3)
  x = random((2, *spatial, c_in))
  down = lambda z: jaxup.conv(z, kernel, **kwargs)
  up = lambda y: jaxup.conv_transpose(y, kernel, output_size=spatial, **kwargs)
  y = random(jax.eval_shape(down, x).shape, seed=5)
  testing.assert_adjoint(up, down, y)
  # And the transpose of conv_transpose is conv, element by element.
  testing.assert_linear_transpose(up, down, y)


def test_every_output_size_is_a_valid_vjp_shape():
  kernel = random((3, 1, 1), seed=1)
  for size in range(7, 10):  # all map to 3 outputs at stride 3, padding 1
    y = random((1, 3, 1))
    got = jaxup.conv_transpose(y, kernel, stride=3, padding=1, output_size=size)
    _, vjp = jax.vjp(lambda z: jaxup.conv(z, kernel, stride=3, padding=1), jnp.zeros((1, size, 1)))
    np.testing.assert_allclose(got, vjp(y)[0], rtol=1e-12)


def test_same_padding_gives_size_times_stride_like_tensorflow():
  x = random((1, 5, 4, 3))
  kernel = random((3, 3, 2, 3), seed=1)
  y = jaxup.conv_transpose(x, kernel, stride=2, padding="SAME")
  assert y.shape == (1, 10, 8, 2)
  _, vjp = jax.vjp(lambda z: jaxup.conv(z, kernel, stride=2, padding="SAME"),
                   jnp.zeros((1, 10, 8, 2)))
  np.testing.assert_allclose(y, vjp(x)[0], rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# Transformations and layouts.


@pytest.mark.parametrize("fn_name", ["conv", "conv_transpose"])
def test_check_grads_second_order(fn_name):
  fn = getattr(jaxup, fn_name)
  kw = dict(stride=2, padding=1, groups=2)
  x = random((1, 4, 3, 2))
  kernel = random((3, 2, 1, 2), seed=1)
  check_grads(lambda x, k: fn(x, k, **kw), (x, kernel), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize("fn_name", ["conv", "conv_transpose"])
def test_jit_eager_vmap_agree(fn_name):
  fn = getattr(jaxup, fn_name)
  kernel = random((3, 3, 2, 2), seed=1)
  x = random((3, 6, 5, 2))
  assert_jit_eager_vmap(lambda x: fn(x, kernel, stride=2, padding=(1, 0)), x)
  # vmap over unbatched HWC images equals the batched call.
  batched = fn(x, kernel, stride=2, padding=(1, 0))
  mapped = jax.vmap(lambda xi: fn(xi, kernel, stride=2, padding=(1, 0), layout="HWC"))(x)
  np.testing.assert_allclose(mapped, batched, rtol=1e-12)


@pytest.mark.parametrize("fn_name", ["conv", "conv_transpose"])
def test_layouts_agree(fn_name):
  fn = getattr(jaxup, fn_name)
  kw = dict(stride=(2, 1, 3), padding=(1, 0, 2), dilation=(1, 2, 1), groups=2)
  kernel = random((2, 3, 3, 2, 4), seed=1)
  x = random((2, 4, 5, 3, 4))  # NDHWC
  expected = fn(x, kernel, **kw)
  for layout in ("NCDHW", "DHWNC", "CNDHW"):
    perm = ["NDHWC".index(c) for c in layout]
    got = fn(jnp.transpose(x, perm), kernel, layout=layout, **kw)
    np.testing.assert_allclose(got, jnp.transpose(expected, perm), rtol=1e-12)
  got = fn(jnp.moveaxis(x[0], -1, 0), kernel, layout="CDHW", **kw)
  np.testing.assert_allclose(got, jnp.moveaxis(expected[0], -1, 0), rtol=1e-12)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32, jnp.float64])
def test_dtypes_are_kept(dtype):
  x = jnp.ones((1, 3, 3, 2), dtype)
  kernel = jnp.ones((2, 2, 2, 2), dtype)
  assert jaxup.conv(x, kernel).dtype == dtype
  assert jaxup.conv_transpose(x, kernel, stride=2).dtype == dtype
  np.testing.assert_array_equal(
      np.asarray(jaxup.conv_transpose(x, kernel, stride=2), np.float32)[0, :2, :2, 0], 2.0)


def test_loads_flax_conv_transpose_kernels():
  nn = pytest.importorskip("flax.linen")
  x = random((2, 5, 4, 3), np.float32)
  for transpose_kernel in (False, True):
    layer = nn.ConvTranspose(features=4, kernel_size=(3, 2), strides=(2, 2), padding="VALID",
                             transpose_kernel=transpose_kernel)
    params = layer.init(jax.random.key(0), x)
    expected = layer.apply(params, x)
    k = params["params"]["kernel"]
    if transpose_kernel:
      kernel = k  # already the forward convolution's kernel
    else:
      kernel = jnp.flip(k, axis=(0, 1)).swapaxes(-1, -2)
    # Flax's 'VALID' output is S * stride + max(K - stride, 0) per axis: (11, 8) here.
    assert expected.shape == (2, 11, 8, 4)
    got = jaxup.conv_transpose(x, kernel, stride=2, padding="VALID", output_size=(11, 8))
    bias = params["params"]["bias"].reshape(1, 1, 1, -1)
    np.testing.assert_allclose(got + bias, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Errors.


def _x():
  return jnp.zeros((1, 6, 6, 4))


@pytest.mark.parametrize(
    "fn_name, kernel_shape, kwargs, error, match",
    [
        ("conv", (3, 3, 4), {}, ValueError, r"kernel has rank 3 .* expected rank 4"),
        ("conv_transpose", (3, 3, 3, 4, 1), {}, ValueError, r"kernel has rank 5"),
        ("conv", (3, 3, 3, 2), {}, ValueError, r"x has 4 channels but kernel shape \(3, 3, 3, 2\)"),
        ("conv_transpose", (3, 3, 2, 3), {}, ValueError, r"x has 4 channels but the kernel's last"),
        ("conv", (3, 3, 4, 2), dict(groups=3), ValueError, r"groups must divide the input channels \(4\), got 3"),
        ("conv", (3, 3, 2, 3), dict(groups=2), ValueError, r"groups must divide the output channels .* got 2"),
        ("conv", (3, 3, 4, 2), dict(groups=0), ValueError, r"groups must be a positive int, got 0"),
        ("conv_transpose", (3, 3, 2, 4), dict(groups=3), ValueError, r"groups must divide .* got 3"),
        ("conv", (3, 3, 4, 2), dict(stride=0), ValueError, r"stride must be a positive int, got 0"),
        ("conv", (3, 3, 4, 2), dict(dilation=(1, -1)), ValueError,
         r"dilation must be a positive int, got -1"),
        ("conv_transpose", (3, 3, 2, 4), dict(stride=(2, 0)), ValueError,
         r"stride must be a positive int, got 0"),
        ("conv", (3, 3, 4, 2), dict(padding=(1, 1, 1)), ValueError,
         r"padding must be .* one entry per spatial axis \(2\), got \(1, 1, 1\) of length 3"),
        ("conv", (3, 3, 4, 2), dict(padding=[(1, 1, 1), 0]), ValueError,
         r"not an int or a \(lo, hi\) pair"),
        ("conv", (3, 3, 4, 2), dict(padding=-1), ValueError, r"padding must be a non-negative int, got -1"),
        ("conv", (3, 3, 4, 2), dict(padding="full"), ValueError, r"padding must be one of 'SAME', 'VALID', got 'full'"),
        ("conv", (3, 3, 4, 2), dict(layout="NHW"), ValueError,
         r"layout must have 4 letters, .* got 'NHW'"),
        ("conv", (3, 3, 4, 2), dict(layout="NHWW"), ValueError, r"layout must use each letter once.*'NHWW'"),
        ("conv", (3, 3, 4, 2), dict(layout="nhw"), ValueError, r"layout must have 4 .*'nhw'"),
        ("conv", (3, 3, 4, 2), dict(layout="NHWX"), ValueError,
         r"layout must contain a channel axis 'C', got 'NHWX'"),
        ("conv", (3, 3, 4, 2), dict(layout=4), TypeError, r"layout must be a string"),
        ("conv", (7, 3, 4, 2), {}, ValueError, r"dilated kernel \(7\) is larger"),
        ("conv_transpose", (3, 3, 2, 4), dict(stride=2, output_padding=2), ValueError,
         r"output_padding must be smaller than the stride \(\(2, 2\)\) or the dilation .* got 2"),
        ("conv_transpose", (3, 3, 2, 4), dict(stride=2, output_size=(15, 13)), ValueError,
         r"output_size=\(15, 13\) is unreachable: along an axis of size 6 with stride 2 the "
         r"valid sizes are 13..14"),
        ("conv_transpose", (3, 3, 2, 4), dict(stride=2, padding="SAME", output_size=10),
         ValueError, r"output_size=10 is unreachable with padding='SAME'.* valid sizes are 11..12"),
        ("conv_transpose", (3, 3, 2, 4), dict(padding="SAME", output_padding=1), ValueError,
         r"output_padding=1 cannot be used with padding='SAME'"),
        ("conv_transpose", (3, 3, 2, 4), dict(stride=2, output_size=12, output_padding=1),
         ValueError, r"not both"),
        ("conv_transpose", (3, 3, 2, 4), dict(padding=4), ValueError,
         r"output size would be 0"),
    ],
)
def test_errors_name_the_argument_and_value(fn_name, kernel_shape, kwargs, error, match):
  with pytest.raises(error, match=match):
    getattr(jaxup, fn_name)(_x(), jnp.zeros(kernel_shape), **kwargs)


def test_integer_inputs_are_rejected():
  with pytest.raises(TypeError, match="x must have a floating-point dtype .* got dtype int32"):
    jaxup.conv(jnp.zeros((1, 4, 4, 1), jnp.int32), jnp.zeros((2, 2, 1, 1)))


def test_kernel_from_torch_loads_conv_and_conv_transpose_weights():
  torch = pytest.importorskip("torch")
  torch.manual_seed(0)
  x = torch.randn(2, 4, 6, 5, dtype=torch.float64)
  conv = torch.nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, groups=2, dtype=torch.float64)
  convt = torch.nn.ConvTranspose2d(4, 6, (3, 2), stride=2, padding=1, output_padding=1,
                                   groups=2, dilation=(1, 2), dtype=torch.float64)
  with torch.no_grad():
    expected = conv(x).numpy() - conv.bias.numpy()[:, None, None]
    expected_t = convt(x).numpy() - convt.bias.numpy()[:, None, None]
  xj = jnp.asarray(x.numpy())
  got = jaxup.conv(xj, jaxup.kernel_from_torch(conv.weight), stride=2, padding=1, groups=2,
                   layout="NCHW")
  got_t = jaxup.conv_transpose(xj, jaxup.kernel_from_torch(convt.weight), stride=2, padding=1,
                               output_padding=1, groups=2, dilation=(1, 2), layout="NCHW")
  np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(got_t, expected_t, rtol=1e-10, atol=1e-10)


def test_kernel_from_torch_rejects_other_ranks():
  with pytest.raises(ValueError, match=r"weight must have rank 3 or 4 or 5 .* got shape \(3, 4\)"):
    jaxup.kernel_from_torch(np.zeros((3, 4)))
