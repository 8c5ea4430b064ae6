"""ICNR: convolution then pixel shuffle starts as nearest upsampling of a plain convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxup
from tests.helpers import random

# (x shape channels-last, kernel spatial size, factor): 1-D, 2-D with per-axis factors, 3-D.
CASES = [((2, 7, 3), (3,), 3), ((1, 5, 4, 2), (3, 2), (2, 3)), ((1, 3, 4, 3, 2), (2, 3, 1), 2)]


@pytest.mark.parametrize("order", ["CRD", "DCR"])
@pytest.mark.parametrize("shape,window,factor", CASES)
def test_shuffle_of_conv_is_nearest_of_plain_conv(shape, window, factor, order):
  n = len(window)
  factors = (factor,) * n if isinstance(factor, int) else factor
  c_in, c = shape[-1], 2
  kernel = jaxup.icnr(factor, order=order)(jax.random.key(3), (*window, c_in, c * np.prod(factors)),
                                           jnp.float64)
  # The sub-kernel w is the first phase of every channel (CRD: every P-th, DCR: the first C).
  p = int(np.prod(factors))
  sub = kernel[..., ::p] if order == "CRD" else kernel[..., :c]
  x = random(shape)
  layout = "NWC" if n == 1 else None  # rank 3 reads two ways without it
  shuffled = jaxup.pixel_shuffle(jaxup.conv(x, kernel, padding=1), factor, order=order,
                                 layout=layout)
  expected = jaxup.upsample_nearest(jaxup.conv(x, sub, padding=1), factor, layout=layout)
  np.testing.assert_array_equal(np.asarray(shuffled), np.asarray(expected))
  # Hand-checked structure: every phase of channel j holds the same weights.
  for j in range(c):
    for q in range(p):
      col = j * p + q if order == "CRD" else q * c + j
      np.testing.assert_array_equal(kernel[..., col], sub[..., j])


def test_initializer_scale_shape_and_dtype():
  seen = {}

  def init(key, shape, dtype):
    seen["shape"] = shape
    return jnp.arange(np.prod(shape), dtype=dtype).reshape(shape)

  kernel = jaxup.icnr(2, init)(jax.random.key(0), (1, 1, 1, 8), jnp.float16)
  assert seen["shape"] == (1, 1, 1, 2) and kernel.dtype == jnp.float16
  np.testing.assert_array_equal(kernel.ravel(), [0, 0, 0, 0, 1, 1, 1, 1])
  kernel = jaxup.icnr(2, init, order="dcr")(jax.random.key(0), (1, 1, 1, 8))
  np.testing.assert_array_equal(kernel.ravel(), [0, 1, 0, 1, 0, 1, 0, 1])
  # Default: LeCun normal over the fan-in prod(K) * C_in (truncated normal, std 1/sqrt(fan_in)).
  big = jaxup.icnr(2)(jax.random.key(1), (3, 3, 64, 256))
  assert abs(float(jnp.std(big[..., ::4])) * np.sqrt(9 * 64) - 1) < 0.05
  assert big.dtype == jnp.float32


def test_errors():
  with pytest.raises(ValueError, match=r"divisible by the product of the factors \(2, 2\) \(4\)"):
    jaxup.icnr(2)(jax.random.key(0), (3, 3, 4, 6))
  with pytest.raises(ValueError, match="1 to 3 spatial axes"):
    jaxup.icnr(2)(jax.random.key(0), (4, 8))
  with pytest.raises(ValueError, match=r"factor must be an int or a sequence of 2 ints"):
    jaxup.icnr((2, 2, 2))(jax.random.key(0), (3, 3, 4, 8))
  with pytest.raises(ValueError, match="factor must be a positive int, got 0"):
    jaxup.icnr(0)
  with pytest.raises(TypeError, match="factor must be an int"):
    jaxup.icnr(2.0)
  with pytest.raises(ValueError, match="order must be one of 'CRD', 'DCR', got 'RCD'"):
    jaxup.icnr(2, order="RCD")
  with pytest.raises(TypeError, match="initializer must be a callable"):
    jaxup.icnr(2, "he_normal")
  with pytest.raises(ValueError, match="in_axis and out_axis must be two different axes"):
    jaxup.icnr(2, in_axis=-1)(jax.random.key(0), (3, 3, 4, 8))


def _x_and_expected(kernel_hwio, sub_channels, factor=2):
  x = random((1, 4, 4, 3), np.float32)
  sub = kernel_hwio[..., ::factor**2]
  assert sub.shape[-1] == sub_channels
  return x, jaxup.upsample_nearest(jaxup.conv(x, sub, padding="SAME"), factor)


def test_flax_linen_and_nnx():
  nn = pytest.importorskip("flax.linen")
  nnx = pytest.importorskip("flax.nnx")
  conv = nn.Conv(8, (3, 3), padding="SAME", use_bias=False, kernel_init=jaxup.icnr(2))
  x = random((1, 4, 4, 3), np.float32)
  params = conv.init(jax.random.key(0), x)
  kernel = params["params"]["kernel"]
  x, expected = _x_and_expected(kernel, 2)
  np.testing.assert_allclose(jaxup.pixel_shuffle(conv.apply(params, x), 2), expected,
                             rtol=1e-6, atol=1e-6)
  layer = nnx.Conv(3, 8, (3, 3), padding="SAME", use_bias=False, kernel_init=jaxup.icnr(2),
                   rngs=nnx.Rngs(0))
  x, expected = _x_and_expected(layer.kernel[...], 2)
  np.testing.assert_allclose(jaxup.pixel_shuffle(layer(x), 2), expected, rtol=1e-6, atol=1e-6)


def test_haiku():
  hk = pytest.importorskip("haiku")

  def forward(x):
    conv = hk.Conv2D(8, 3, padding="SAME", with_bias=False,
                     w_init=lambda shape, dtype: jaxup.icnr(2)(hk.next_rng_key(), shape, dtype))
    return jaxup.pixel_shuffle(conv(x), 2)

  model = hk.transform(forward)
  x = random((1, 4, 4, 3), np.float32)
  params = model.init(jax.random.key(0), x)
  x, expected = _x_and_expected(params["conv2_d"]["w"], 2)
  np.testing.assert_allclose(model.apply(params, None, x), expected, rtol=1e-6, atol=1e-6)


def test_equinox_oihw():
  eqx = pytest.importorskip("equinox")
  conv = eqx.nn.Conv2d(3, 8, 3, padding=1, use_bias=False, key=jax.random.key(0))
  weight = jaxup.icnr(2, in_axis=1, out_axis=0)(jax.random.key(1), conv.weight.shape)
  conv = eqx.tree_at(lambda c: c.weight, conv, weight)
  x, expected = _x_and_expected(jnp.transpose(weight, (2, 3, 1, 0)), 2)
  y = jaxup.pixel_shuffle(conv(jnp.moveaxis(x[0], -1, 0)), 2, layout="CHW")
  np.testing.assert_allclose(jnp.moveaxis(y, 0, -1), expected[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [None, 3, "3x3"])
def test_shape_must_be_a_sequence(shape):
  with pytest.raises(TypeError, match=r"shape must be a sequence of ints, a convolution "
                                       r"kernel's shape"):
    jaxup.icnr(2)(jax.random.key(0), shape)
