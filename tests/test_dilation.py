"""Dilated convolutions: taps that read only padding are dropped exactly, the transposes stay
dilated correlations (by phase when strided), and a gradient costs what lax's costs.

Every formulation is checked against the NumPy definition (``tests/test_lowering.py``) and
``lax.conv_general_dilated`` on a grid of dilations from 1 to 36 with paddings up to the rate
and maps smaller than the dilated kernel.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.test_util import check_grads

import jaxup
from jaxup._src import lowering
from tests.helpers import random
from tests.test_lowering import np_conv_family

RATES = (1, 2, 3, 6, 12, 18, 24, 36)
DN = lowering._CHANNELS_LAST


def _config(rng):
  """A random dilated geometry: (n, groups, c_in, c_out, K, s, d, S, pads)."""
  while True:
    n = int(rng.choice([1, 1, 2, 2, 3]))
    groups = int(rng.choice([1, 2]))
    c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
    k = tuple(int(v) for v in rng.integers(1, 4, n))
    s = tuple(int(v) for v in rng.integers(1, 4, n))
    d = tuple(int(rng.choice(RATES if n < 3 else RATES[:5])) for _ in range(n))
    sizes = tuple(int(v) for v in rng.integers(1, 9 if n < 3 else 5, n))
    pads = tuple((int(rng.integers(0, di + 1)), int(rng.integers(0, di + 1))) for di in d)
    if all(sz + lo + hi >= di * (ki - 1) + 1 for sz, (lo, hi), ki, di in zip(sizes, pads, k, d)):
      return n, groups, c_in, c_out, k, s, d, sizes, pads


# A few configurations the random grid might miss: the ASPP branch (a 3x3 kernel at rate 36
# on an 8x12 map, where only the centre tap reads the input), a map smaller than the dilated
# kernel with one-sided padding, strided and dilated with gcd(d, s) > 1, and 3-D.
FIXED = [
    (2, 1, 2, 3, (3, 3), (1, 1), (36, 36), (8, 12), ((36, 36), (36, 36))),
    (2, 1, 2, 2, (3, 3), (2, 2), (6, 12), (5, 7), ((6, 2), (12, 6))),
    (1, 2, 2, 4, (3,), (2,), (4,), (3,), ((4, 4),)),
    (1, 1, 1, 1, (3,), (3,), (6,), (7,), ((6, 6),)),
    (3, 1, 1, 2, (3, 2, 3), (1, 2, 3), (2, 3, 6), (4, 3, 2), ((2, 2), (0, 3), (6, 6))),
]


def _check(config, dtype):
  n, groups, c_in, c_out, k, s, d, sizes, pads = config
  rng = np.random.default_rng(hash(config) % 2**32)
  x = rng.standard_normal((2, *sizes, c_in))
  w = rng.standard_normal((*k, c_in // groups, c_out))
  outs = jaxup.conv_output_size(sizes, k, stride=s, padding=pads, dilation=d)
  ct = rng.standard_normal((2, *outs, c_out))
  y_ref, gx_ref, gw_ref = np_conv_family(x, w, ct, s, pads, d, groups)
  kw = dict(stride=s, padding=pads, dilation=d, groups=groups)
  geom = lowering.Geometry(sizes, tuple(outs), k, s, tuple(lo for lo, _ in pads), d, groups)
  trimmed = lowering.trim(geom)  # None: every window reads padding only
  undilated = trimmed is None or set(trimmed[0].dilations) == {1}
  forms = ["phases"] + (["subpixel"] if undilated else [])

  def run(x, w, ct):
    out = {}
    for low in lowering.LOWERINGS:
      y, vjp = jax.vjp(lambda x, w: jaxup.conv(x, w, lowering=low, **kw), x, w)
      gx, gw = vjp(ct)
      out[low] = dict(y=y, gx=gx, gw=gw,
                      up=jaxup.conv_transpose(ct, w, output_size=sizes, lowering=low, **kw))
    for form in forms:  # the lowerings above reach these with an XLA or "auto" inner product
      out[f"{form}/matmul"] = dict(up=lowering.transpose_by(form, ct, w, geom, inner="matmul"))
    return out

  xs, ws, cts = (jnp.asarray(a, dtype) for a in (x, w, ct))
  got = jax.jit(run)(xs, ws, cts)
  lax_y = lax.conv_general_dilated(xs, ws, s, pads, rhs_dilation=d, feature_group_count=groups,
                                   dimension_numbers=DN[n])
  refs = dict(y=y_ref, gx=gx_ref, gw=gw_ref, up=gx_ref)
  if all(v == 1 for v in s):  # JAX's own VJP of lax: no input dilation at stride 1
    _, lax_vjp = jax.vjp(lambda x, w: lax.conv_general_dilated(
        x, w, s, pads, rhs_dilation=d, feature_group_count=groups, dimension_numbers=DN[n]),
                         xs, ws)
    lax_gx, lax_gw = lax_vjp(cts)
    np.testing.assert_allclose(lax_gx, gx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(lax_gw, gw_ref, rtol=1e-4, atol=1e-4)
  tol = 1e-4 if dtype == np.float32 else 1e-10
  np.testing.assert_allclose(lax_y, y_ref, rtol=tol, atol=tol)
  for name, values in got.items():
    for key, value in values.items():
      assert value.dtype == dtype, (name, key)
      np.testing.assert_allclose(value, refs[key], rtol=tol, atol=tol,
                                 err_msg=f"{name} {key} {config}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_formulation_matches_the_definition_on_a_dilation_grid(dtype):
  rng = np.random.default_rng(14 if dtype == np.float32 else 36)
  for config in (FIXED if dtype == np.float32 else []) + [_config(rng) for _ in range(6)]:
    _check(config, dtype)


def test_trim_keeps_exactly_the_taps_that_read_the_input():
  rng = np.random.default_rng(3)
  for _ in range(300):
    k, s, d = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.choice(RATES))
    size, lo = int(rng.integers(1, 10)), int(rng.integers(-2, d + 3))
    hi = int(rng.integers(0, d + 3))
    out = (size + lo + hi - d * (k - 1) - 1) // s + 1
    if out < 1 or size + lo <= 0:
      continue
    geom = lowering.Geometry((size,), (out,), (k,), (s,), (lo,), (d,), 1)
    reads = [t for t in range(k) if any(lo <= o * s + t * d < lo + size for o in range(out))]
    trimmed = lowering.trim(geom)
    if not reads:
      assert trimmed is None
      continue
    new, (first,) = trimmed
    assert first == reads[0] and new.kernel_sizes == (reads[-1] - reads[0] + 1,)
    assert new.lows == (lo - first * d,) and new.out_sizes == (out,)
    # The kept taps read the same input positions as before.
    assert new.padded_sizes()[0] - new.lows[0] - new.highs()[0] == size


def test_the_aspp_branch_is_a_one_by_one_product():
  geom = lowering.Geometry((8, 12), (8, 12), (3, 3), (1, 1), (36, 36), (36, 36), 1)
  trimmed, firsts = lowering.trim(geom)
  assert trimmed.kernel_sizes == (1, 1) and firsts == (1, 1) and trimmed.lows == (0, 0)
  assert trimmed.dilations == (1, 1)


def test_a_convolution_whose_taps_all_read_padding_is_zero():
  # Stride 3 steps over the only input sample: every window reads padding.
  x, w = jnp.ones((1, 1, 1)), jnp.ones((1, 1, 1))
  y = jaxup.conv(x, w, stride=3, padding=2)
  np.testing.assert_array_equal(y, np.zeros((1, 2, 1)))
  gx, gw = jax.grad(lambda x, w: jnp.sum(jaxup.conv(x, w, stride=3, padding=2)), (0, 1))(x, w)
  np.testing.assert_array_equal(gx, np.zeros_like(x))
  np.testing.assert_array_equal(gw, np.zeros_like(w))


@pytest.mark.parametrize("low", lowering.LOWERINGS)
def test_check_grads_second_order_dilated_and_strided(low):
  x = random((1, 6, 7, 2))
  for kw in (dict(dilation=(3, 2), padding=((3, 2), 2)),
             dict(stride=(2, 3), dilation=(2, 3), padding=((2, 1), (0, 3))),
             dict(stride=2, dilation=6, padding=6, groups=2)):
    kernel = random((3, 2, 2 // kw.get("groups", 1), 2), seed=1)
    f = functools.partial(jaxup.conv, lowering=low, **kw)
    check_grads(f, (x, kernel), order=2, modes=("fwd", "rev"))
    y = jax.eval_shape(f, x, kernel)
    t = functools.partial(jaxup.conv_transpose, output_size=x.shape[1:3], lowering=low, **kw)
    check_grads(t, (random(y.shape, seed=2), kernel), order=2, modes=("fwd", "rev"))


def _cost(f, *args):
  compiled = jax.jit(f).lower(*args).compile()
  return compiled.memory_analysis().temp_size_in_bytes, compiled.cost_analysis()["flops"]


@pytest.mark.parametrize("rate,stride", [(2, 1), (6, 1), (36, 1), (6, 2)])
def test_dilated_gradient_costs_what_lax_costs(rate, stride):
  # DeepLab's ASPP branch at reduced channels: 3x3 at `rate`, padding `rate`, an 8x12 map.
  x = jnp.ones((2, 8, 12, 64), jnp.float32)
  w = jnp.ones((3, 3, 64, 16), jnp.float32)
  conv = functools.partial(jaxup.conv, stride=stride, padding=rate, dilation=rate)
  ours = jax.grad(lambda a, w: jnp.sum(conv(a, w) ** 2), argnums=(0, 1))
  ref = jax.grad(lambda a, w: jnp.sum(lax.conv_general_dilated(
      a, w, (stride, stride), [(rate, rate)] * 2, rhs_dilation=(rate, rate),
      dimension_numbers=DN[2]) ** 2), argnums=(0, 1))
  (our_temp, our_flops), (lax_temp, lax_flops) = _cost(ours, x, w), _cost(ref, x, w)
  assert our_flops <= 1.2 * lax_flops, (our_flops, lax_flops)
  assert our_temp <= 1.2 * lax_temp, (our_temp, lax_temp)


def test_a_stride_one_dilated_transpose_is_a_dilated_correlation():
  # No kernel inflated with interior zeros: the transpose's convolution keeps the 3x3 kernel
  # and carries the dilation itself.
  x, w = jnp.ones((1, 16, 16, 4)), jnp.ones((3, 3, 4, 4))
  text = jax.jit(lambda y, w: jaxup.conv_transpose(y, w, padding=4, dilation=4,
                                                   lowering="xla")).lower(x, w).as_text()
  assert "rhs_dilate = [4, 4]" in text
  assert "tensor<3x3x4x4x" in text and "tensor<9x9" not in text
