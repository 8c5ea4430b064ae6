"""upsample_conv: hand-computed values, the unfused definition, PyTorch, adjoint, gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from jaxup._src import upsample_conv as module
from tests.helpers import assert_jit_eager_vmap, grid_size, random

FUSED = (True, False, "auto")


def unfused(x, kernel, factor, **kwargs):
  """The definition: nearest upsampling, then the convolution."""
  layout = kwargs.get("layout")
  return jaxup.conv(jaxup.upsample_nearest(x, factor, layout=layout), kernel, **kwargs)


def sum_pool(y, factors):
  """Non-overlapping sum pooling over ``factors`` blocks of a channels-last batched array."""
  n = len(factors)
  shape = [y.shape[0]]
  for size, f in zip(y.shape[1:1 + n], factors):
    shape += [size // f, f]
  y = y.reshape(*shape, y.shape[-1])
  return y.sum(axis=tuple(2 + 2 * a for a in range(n)))


# ----------------------------------------------------------------------------------------------
# Hand-computed values.


@pytest.mark.parametrize("fused", FUSED)
def test_hand_computed_1d_and_2d(fused):
  # [1, 2] upsampled by 2 is [1, 1, 2, 2]; padded by 1: [0, 1, 1, 2, 2, 0]; correlated with
  # [1, 10]: [10, 11, 21, 22, 2].
  x = jnp.array([1.0, 2.0]).reshape(1, 2, 1)
  kernel = jnp.array([1.0, 10.0]).reshape(2, 1, 1)
  y = jaxup.upsample_conv(x, kernel, 2, padding=1, fused=fused)
  np.testing.assert_array_equal(y[0, :, 0], [10, 11, 21, 22, 2])
  # Factor 3, kernel 3, "SAME" (pads 1, 1): [0, 1,1,1, 2,2,2, 0] * [1, 10, 100].
  kernel3 = jnp.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
  y = jaxup.upsample_conv(x, kernel3, 3, padding="SAME", fused=fused)
  np.testing.assert_array_equal(y[0, :, 0], [110, 111, 211, 221, 222, 22])
  # 2-D: a 1x1 image of 1 upsampled by 2 to a 2x2 block of ones, 2x2 kernel [[1, 2], [3, 4]],
  # padding 1: every output is the sum of the kernel taps that fall on the block.
  x2 = jnp.ones((1, 1, 1, 1))
  kernel2 = jnp.array([[1.0, 2.0], [3.0, 4.0]]).reshape(2, 2, 1, 1)
  y = jaxup.upsample_conv(x2, kernel2, 2, padding=1, fused=fused)
  np.testing.assert_array_equal(y[0, :, :, 0], [[4, 7, 3], [6, 10, 4], [2, 3, 1]])


def test_polyphase_kernel_sums_the_taps_of_each_phase():
  # K=3, f=2, d=1: phase r reads x[q + (r + k) // 2] through tap k. Phase 0 reads x[q]
  # through taps 0 and 1, x[q + 1] through tap 2; phase 1 reads x[q] through tap 0, x[q + 1]
  # through taps 1 and 2.
  kernel = jnp.array([1.0, 10.0, 100.0]).reshape(3, 1, 1)
  sub = module.polyphase_kernel(kernel, (2,), (1,))
  assert sub.shape == (2, 2, 1, 1)  # [phase, tap, I, O]
  np.testing.assert_array_equal(sub[:, :, 0, 0], [[11, 100], [1, 110]])
  # Dilation 3 at factor 2: taps at 0, 3, 6; phase 0 reads q, q+1, q+3; phase 1 q, q+2, q+3.
  sub = module.polyphase_kernel(kernel, (2,), (3,))
  np.testing.assert_array_equal(sub[:, :, 0, 0], [[1, 10, 0, 100], [1, 0, 10, 100]])


# ----------------------------------------------------------------------------------------------
# The unfused definition, over a random grid.

_LAYOUTS = {1: ("NWC", "NCW", "WC"), 2: ("NHWC", "NCHW", "HWC", "CHW"), 3: ("NDHWC", "NCDHW")}


def _random_case(rng):
  n = int(rng.integers(1, 4))
  layout = _LAYOUTS[n][int(rng.integers(len(_LAYOUTS[n])))]
  groups = int(rng.integers(1, 3))
  c_in, c_out = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
  sizes = {c: int(rng.integers(1, 4)) for c in layout if c not in "NC"}
  shape = tuple(2 if c == "N" else c_in if c == "C" else sizes[c] for c in layout)
  kernel = tuple(int(rng.integers(1, 5)) for _ in range(n))
  factors = tuple(int(rng.integers(1, 4)) for _ in range(n))
  dilation = tuple(int(rng.integers(1, 3)) for _ in range(n))
  padding = [0, 1, 2, "SAME", "VALID", tuple((int(rng.integers(0, 4)), int(rng.integers(0, 4)))
                                            for _ in range(n))][int(rng.integers(6))]
  return dict(shape=shape, kernel=(*kernel, c_in // groups, c_out), factor=factors,
              padding=padding, dilation=dilation, groups=groups, layout=layout)


def test_equals_the_unfused_definition_on_a_random_grid():
  rng = np.random.default_rng(7)
  checked = 0
  for seed in range(grid_size(24)):
    case = _random_case(rng)
    x = random(case.pop("shape"), seed=seed)
    kernel = random(case.pop("kernel"), seed=seed + 100)
    factor = case.pop("factor")
    try:
      expected = unfused(x, kernel, factor, **case)
    except ValueError:
      with pytest.raises(ValueError):
        jaxup.upsample_conv(x, kernel, factor, fused=True, **case)
      continue
    y = jaxup.upsample_conv(x, kernel, factor, fused=True, **case)
    assert y.shape == expected.shape, case
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12, err_msg=str(case))
    checked += 1
  assert checked >= grid_size(15)


def test_float32_and_the_auto_rule():
  # Big enough for "auto" to take the polyphase form, and small enough for it not to.
  kernel = random((3, 3, 4, 5), np.float32, seed=1)
  for shape, polyphase in (((4, 16, 16, 4), True), ((1, 3, 3, 4), False)):
    x = random(shape, np.float32)
    assert module._polyphase_pays(shape[0], shape[1:3], (3, 3), (2, 2), (1, 1)) is polyphase
    expected = unfused(x, kernel, 2, padding=1)
    for fused in FUSED:
      y = jaxup.upsample_conv(x, kernel, 2, padding=1, fused=fused)
      assert y.dtype == jnp.float32
      np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    for lowering in ("xla", "matmul"):  # the convolution's own lowering, passed through
      y = jaxup.upsample_conv(x, kernel, 2, padding=1, fused=True, lowering=lowering)
      np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
  # A kernel no larger than the factor saves no taps (1x1): always unfused.
  assert not module._polyphase_pays(8, (64, 64), (1, 1), (2, 2), (1, 1))


def test_auto_decides_when_the_program_is_lowered_for_its_platform():
  # One traced program; exported (not run) for each platform, it holds the CPU's polyphase
  # convolution (a 2x2 kernel with 4 phases of 5 channels) or the upsampled input, unfused.
  x = jax.ShapeDtypeStruct((4, 16, 16, 4), jnp.float32)
  kernel = jax.ShapeDtypeStruct((3, 3, 4, 5), jnp.float32)
  f = jax.jit(lambda x, k: jaxup.upsample_conv(x, k, 2, padding=1))
  for platform, polyphase in (("cpu", True), ("cuda", False), ("tpu", False)):
    text = jax.export.export(f, platforms=[platform])(x, kernel).mlir_module()
    assert ("tensor<2x2x4x20xf32>" in text) is polyphase, platform
    assert ("tensor<4x32x32x4xf32>" in text) is not polyphase, platform  # the upsampled x


# ----------------------------------------------------------------------------------------------
# PyTorch: nn.Upsample(scale_factor) followed by Conv{1,2,3}d.


def test_matches_pytorch_interpolate_then_conv():
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  rng = np.random.default_rng(3)
  conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
  for n, factor, k, padding, dilation, groups in [
      (2, 2, 3, 1, 1, 2), (2, 3, 4, 2, 2, 1), (1, 2, 5, 2, 1, 1), (3, 2, 3, 1, 1, 1)]:
    shape = (2, 4) + (5, 4, 3)[:n]
    x = rng.standard_normal(shape)
    w = rng.standard_normal((6, 4 // groups) + (k,) * n)
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    expected = conv[n](F.interpolate(xt, scale_factor=factor, mode="nearest"), wt,
                       padding=padding, dilation=dilation, groups=groups).numpy()
    layout = {1: "NCW", 2: "NCHW", 3: "NCDHW"}[n]
    for fused in (True, False):
      y = jaxup.upsample_conv(x, jaxup.kernel_from_torch(w), factor, padding=padding,
                              dilation=dilation, groups=groups, layout=layout, fused=fused)
      np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------------------------
# Adjoint, gradients, transformations.


def test_adjoint_is_conv_transpose_then_sum_pooling():
  x = random((2, 3, 4, 3))
  kernel = random((3, 2, 3, 5), seed=1)
  for factor, padding in (((2, 3), 1), ((2, 2), "SAME"), ((3, 1), ((0, 2), (1, 0)))):
    up = lambda v: jaxup.upsample_conv(v, kernel, factor, padding=padding, fused=True)
    y = random(jax.eval_shape(up, x).shape, seed=2)
    pads = padding if isinstance(padding, (int, tuple)) else "SAME"

    def down(v):
      return sum_pool(jaxup.conv_transpose(
          v, kernel, padding=pads,
          output_size=(x.shape[1] * factor[0], x.shape[2] * factor[1])), factor)

    np.testing.assert_allclose(jnp.vdot(up(x), y), jnp.vdot(x, down(y)), rtol=1e-10)
    # The transpose JAX derives is that same down-sampler.
    (transposed,) = jax.linear_transpose(up, x)(y)
    np.testing.assert_allclose(transposed, down(y), rtol=1e-10, atol=1e-10)


def test_check_grads_and_jvp():
  x = random((1, 2, 2, 2))
  kernel = random((3, 3, 2, 1), seed=1)
  f = lambda x, k: jaxup.upsample_conv(x, k, 2, padding=1, fused=True)
  check_grads(f, (x, kernel), order=2, modes=("fwd", "rev"))
  t = random(x.shape, seed=3)
  primal, tangent = jax.jvp(lambda v: f(v, kernel), (x,), (t,))
  np.testing.assert_allclose(tangent, f(t, kernel), rtol=1e-12, atol=1e-12)


def test_jit_eager_vmap():
  kernel = random((3, 3, 2, 4), seed=1)
  x = random((3, 4, 3, 2))
  assert_jit_eager_vmap(
      lambda v: jaxup.upsample_conv(v, kernel, 2, padding="SAME", fused=True), x)
  # Channels-first with the batch axis mapped away.
  x_first = jnp.moveaxis(x, -1, 1)
  single = jax.vmap(lambda v: jaxup.upsample_conv(v, kernel, 2, padding="SAME", layout="CHW"))
  np.testing.assert_allclose(
      single(x_first), jnp.moveaxis(jaxup.upsample_conv(x, kernel, 2, padding="SAME"), -1, 1),
      rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------------------------
# Errors.


def test_errors():
  x = jnp.ones((1, 3, 3, 4))
  kernel = jnp.ones((3, 3, 4, 2))
  with pytest.raises(ValueError, match="factor must be a positive int, got 0"):
    jaxup.upsample_conv(x, kernel, 0)
  with pytest.raises(TypeError, match="factor must be an int, got 2.0"):
    jaxup.upsample_conv(x, kernel, 2.0)
  with pytest.raises(ValueError, match="fused must be one of 'auto', got 'yes'"):
    jaxup.upsample_conv(x, kernel, 2, fused="yes")
  with pytest.raises(TypeError, match="fused must be a bool"):
    jaxup.upsample_conv(x, kernel, 2, fused=1)
  with pytest.raises(ValueError, match="lowering must be one of"):
    jaxup.upsample_conv(x, kernel, 2, lowering="fast")
  assert jaxup.upsample_conv(x, kernel, 2, fused="AUTO").shape == (1, 4, 4, 2)
  with pytest.raises(ValueError, match="kernel has rank 3 .* expected rank 4"):
    jaxup.upsample_conv(x, jnp.ones((3, 4, 2)), 2)
  with pytest.raises(ValueError, match=r"x has 4 channels but kernel shape \(3, 3, 3, 2\)"):
    jaxup.upsample_conv(x, jnp.ones((3, 3, 3, 2)), 2)
  with pytest.raises(ValueError, match="groups must divide the output channels"):
    jaxup.upsample_conv(x, jnp.ones((3, 3, 1, 2)), 2, groups=4)
  with pytest.raises(TypeError, match="x must have a floating-point dtype"):
    jaxup.upsample_conv(jnp.ones((1, 3, 3, 4), jnp.int32), kernel, 2)
  with pytest.raises(ValueError, match="padding"):
    jaxup.upsample_conv(x, kernel, 2, padding="FULL")
  with pytest.raises(ValueError):
    jaxup.upsample_conv(x, jnp.ones((9, 9, 4, 2)), 1)  # kernel larger than the input
