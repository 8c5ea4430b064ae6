"""upfirdn against StyleGAN2's definition computed directly (zero insertion, pad, convolve,
subsample), its adjoint, and the blur-upsample / blur-pool built on it."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from tests.helpers import assert_jit_eager_vmap, random


def direct_upfirdn(x, f, up, down, pads, gain=1.0, flip_filter=False):
  """StyleGAN2's upfirdn2d, written out on a channels-last [N, *S, C] float64 array."""
  x = np.asarray(x, np.float64)
  n = x.ndim - 2
  f = np.asarray(f, np.float64)
  if f.ndim == 1:
    f = np.einsum(",".join("abc"[:n]) + "->" + "abc"[:n], *([f] * n)) if n > 1 else f
  # 1. zero insertion: u - 1 zeros after every sample.
  z = np.zeros((x.shape[0], *[s * u for s, u in zip(x.shape[1:-1], up)], x.shape[-1]))
  z[(slice(None), *[slice(None, None, u) for u in up], slice(None))] = x
  # 2. pad (positive) and crop (negative).
  z = np.pad(z, [(0, 0)] + [(max(lo, 0), max(hi, 0)) for lo, hi in pads] + [(0, 0)])
  z = z[(slice(None), *[slice(max(-lo, 0), z.shape[i + 1] - max(-hi, 0))
                        for i, (lo, hi) in enumerate(pads)], slice(None))]
  # 3. true convolution over the fully overlapping positions.
  g = f if flip_filter else f[tuple(slice(None, None, -1) for _ in range(n))]
  out = [s - k + 1 for s, k in zip(z.shape[1:-1], g.shape)]
  v = np.zeros((x.shape[0], *out, x.shape[-1]))
  for idx in itertools.product(*[range(k) for k in g.shape]):
    v += g[idx] * z[(slice(None), *[slice(i, i + o) for i, o in zip(idx, out)], slice(None))]
  # 4. subsample.
  return gain * v[(slice(None), *[slice(None, None, d) for d in down], slice(None))]


def out_size(s, k, u, d, lo, hi):
  return (s * u + lo + hi - k + d) // d


def random_case(rng):
  """(shape, filter, up, down, padding) with small sizes and every output size >= 1."""
  while True:
    n = int(rng.integers(1, 4))
    up = tuple(int(v) for v in rng.integers(1, 5, n))
    down = tuple(int(v) for v in rng.integers(1, 5, n))
    sizes = tuple(int(v) for v in rng.integers(1, 6 if n < 3 else 4, n))
    separable = bool(rng.integers(2))
    fshape = ((int(rng.integers(1, 6)),) if separable
              else tuple(int(v) for v in rng.integers(1, 5, n)))
    ks = fshape * n if separable else fshape
    pads = tuple((int(rng.integers(-3, 5)), int(rng.integers(-3, 5))) for _ in range(n))
    if all(out_size(s, k, u, d, lo, hi) >= 1
           for s, k, u, d, (lo, hi) in zip(sizes, ks, up, down, pads)):
      shape = (int(rng.integers(1, 3)), *sizes, int(rng.integers(1, 3)))
      return shape, rng.standard_normal(fshape), up, down, pads


def test_hand_computed():
  # up 2, filter [1, 3, 3, 1] / 4 (StyleGAN2's upsample in 1-D), padding (2, 1).
  y = jaxup.upfirdn(jnp.array([1.0, 2.0]), jnp.array([1.0, 3.0, 3.0, 1.0]) / 4, up=2,
                    padding=[(2, 1)], gain=2.0, layout="W")
  # z = [0, 0, 1, 0, 2, 0, 0]; y[t] = 2 sum_k f[k] z[t + 3 - k] over 4 positions.
  np.testing.assert_allclose(y, [1.5, 2.5, 3.5, 3.0])
  # down 3 with a crop of one sample in front: [1, 2, 3, 4, 5, 6, 7] -> [2, 5].
  y = jaxup.upfirdn(jnp.arange(1.0, 8.0), jnp.array([1.0]), down=3, padding=[(-1, 0)],
                    layout="W")
  np.testing.assert_allclose(y, [2.0, 5.0])
  # A 2-D non-separable filter correlates when flipped: the delta at (0, 1) shifts left.
  x = jnp.arange(9.0).reshape(3, 3)
  y = jaxup.upfirdn(x, jnp.array([[0.0, 1.0]]), padding=((0, 0), (0, 1)), flip_filter=True,
                    layout="HW")
  np.testing.assert_allclose(y, [[1, 2, 0], [4, 5, 0], [7, 8, 0]])


def test_matches_direct_definition_on_a_random_grid():
  rng = np.random.default_rng(0)
  for _ in range(24):
    shape, f, up, down, pads = random_case(rng)
    flip = bool(rng.integers(2))
    gain = float(rng.uniform(0.5, 2.0))
    x = rng.standard_normal(shape)
    y = jaxup.upfirdn(x, f, up=up, down=down, padding=pads, gain=gain, flip_filter=flip)
    np.testing.assert_allclose(
        y, direct_upfirdn(x, f, up, down, pads, gain, flip), rtol=1e-12, atol=1e-12,
        err_msg=str((shape, f.shape, up, down, pads)))


def test_scipy_upfirdn():
  signal = pytest.importorskip("scipy.signal")
  rng = np.random.default_rng(1)
  for k, u, d in [(4, 2, 1), (5, 3, 2), (2, 4, 3), (7, 1, 4)]:
    x, h = rng.standard_normal(9), rng.standard_normal(k)
    # scipy's full convolution of the zero-interleaved signal: padding (K - 1, K - u).
    y = jaxup.upfirdn(x, h, up=u, down=d, padding=[(k - 1, k - u)], layout="W")
    np.testing.assert_allclose(y, signal.upfirdn(h, x, u, d), rtol=1e-12, atol=1e-12)


def adjoint_padding(sizes, ks, up, down, pads, outs):
  """The padding of the adjoint upfirdn (up and down exchanged, filter flipped)."""
  result = []
  for s, k, u, d, (lo, _), o in zip(sizes, ks, up, down, pads, outs):
    lo_adj = k - 1 - lo
    result.append((lo_adj, (s - 1) * u + k - o * d - lo_adj))
  return tuple(result)


def test_adjoint_is_upfirdn_with_flipped_filter_and_exchanged_factors():
  rng = np.random.default_rng(2)
  for _ in range(8):
    shape, f, up, down, pads = random_case(rng)
    flip = bool(rng.integers(2))
    x = random(shape, seed=3)
    forward = lambda v: jaxup.upfirdn(v, f, up=up, down=down, padding=pads, gain=1.5,
                                      flip_filter=flip)
    y = forward(x)
    ks = f.shape * (len(shape) - 2) if f.ndim == 1 else f.shape
    adj = adjoint_padding(shape[1:-1], ks, up, down, pads, y.shape[1:-1])
    down_sampler = lambda w: jaxup.upfirdn(w, f, up=down, down=up, padding=adj, gain=1.5,
                                           flip_filter=not flip)
    w = random(y.shape, seed=4)
    xt = down_sampler(w)
    assert xt.shape == x.shape
    np.testing.assert_allclose(jnp.vdot(y, w), jnp.vdot(x, xt), rtol=1e-10, atol=1e-10)
    (transposed,) = jax.linear_transpose(forward, x)(w)
    np.testing.assert_allclose(transposed, xt, rtol=1e-10, atol=1e-10)


def test_grads_jit_vmap_and_no_dilated_convolution():
  x = random((2, 5, 4, 3))
  f = jnp.array([1.0, 3.0, 3.0, 1.0])
  fn = lambda v, g: jaxup.upfirdn(v, g, up=(2, 3), down=(3, 2), padding=((2, -1), (1, 2)))
  check_grads(fn, (x, f), order=1, modes=("fwd", "rev"))
  f2 = random((2, 3), seed=5)
  check_grads(lambda v, g: jaxup.upfirdn(v, g, up=2, down=2, padding=1), (x, f2), order=1,
              modes=("rev",))
  assert_jit_eager_vmap(lambda v: fn(v, f), x)
  jaxpr = str(jax.make_jaxpr(jax.grad(lambda v: jnp.sum(fn(v, f) ** 2)))(x))
  assert "conv_general_dilated" not in jaxpr


def test_every_layout():
  x = random((2, 4, 5, 3))  # NHWC
  f = random((3,), seed=6)
  kwargs = dict(up=(2, 1), down=(1, 3), padding=((1, 2), (0, -1)))
  expected = np.asarray(jaxup.upfirdn(x, f, **kwargs))
  for layout, perm in [("NCHW", (0, 3, 1, 2)), ("HWCN", (1, 2, 3, 0)), ("HCNW", (1, 3, 0, 2))]:
    y = jaxup.upfirdn(jnp.transpose(x, perm), f, layout=layout, **kwargs)
    np.testing.assert_allclose(y, np.transpose(expected, perm), rtol=1e-12, atol=1e-12)
  y = jaxup.upfirdn(x[0, ..., 0], f, layout="HW", **kwargs)
  np.testing.assert_allclose(y, expected[0, ..., 0], rtol=1e-12, atol=1e-12)
  assert jaxup.upfirdn(x[:0], f, **kwargs).shape == (0, *expected.shape[1:])
  y32 = jaxup.upfirdn(x.astype(jnp.float32), f, **kwargs)
  assert y32.dtype == jnp.float32
  np.testing.assert_allclose(y32, expected, rtol=1e-5, atol=1e-5)


def test_blur_upsample_is_stylegan2_upsample():
  x = random((1, 3, 4, 2))
  y = jaxup.blur_upsample(x)
  assert y.shape == (1, 6, 8, 2)
  f = np.array([1.0, 3.0, 3.0, 1.0]) / 8  # normalised, then gain 4 = 2 per axis
  np.testing.assert_allclose(y, direct_upfirdn(x, f, (2, 2), (1, 1), ((2, 1), (2, 1)), 4.0),
                             rtol=1e-12, atol=1e-12)
  # Factor 3, a 3-D volume and a 5-tap filter: the size is exactly factor * size.
  v = random((1, 2, 3, 2, 1))
  f5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
  y = jaxup.blur_upsample(v, 3, filter=f5)
  assert y.shape == (1, 6, 9, 6, 1)
  np.testing.assert_allclose(
      y, direct_upfirdn(v, f5 / 16, (3,) * 3, (1,) * 3, ((3, 1),) * 3, 27.0), rtol=1e-12,
      atol=1e-12)
  # A constant stays constant in the interior.
  np.testing.assert_allclose(jaxup.blur_upsample(jnp.ones((1, 6, 1)), layout="NWC")[0, 2:-2, 0], 1.0)


def direct_blur_pool(x, f, s, mode):
  """antialiased_cnns.BlurPool on NHWC: pad ((K-1)//2, ceil((K-1)/2)), correlate, subsample."""
  k = len(f)
  w = [(0, 0)] + [((k - 1) // 2, k // 2)] * (x.ndim - 2) + [(0, 0)]
  xp = np.pad(np.asarray(x), w, mode={"reflect": "reflect", "replicate": "edge",
                                      "zeros": "constant"}[mode])
  f = np.asarray(f, np.float64) / np.sum(f)
  return direct_upfirdn(xp, f, (1,) * (x.ndim - 2), (s,) * (x.ndim - 2),
                        ((0, 0),) * (x.ndim - 2), flip_filter=True)


def test_blur_pool_is_antialiased_cnns_blurpool():
  x = random((2, 7, 6, 3))
  for mode in ("reflect", "replicate", "zeros"):
    np.testing.assert_allclose(jaxup.blur_pool(x, padding_mode=mode),
                               direct_blur_pool(x, [1, 3, 3, 1], 2, mode), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(jaxup.blur_pool(x[:, :, 0], 3, filter=[1.0, 2.0, 1.0], layout="NWC"),
                             direct_blur_pool(x[:, :, 0], [1, 2, 1], 3, "reflect"), rtol=1e-12,
                             atol=1e-12)
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  xt = torch.from_numpy(np.asarray(x).transpose(0, 3, 1, 2).copy())
  a = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
  filt = (a[:, None] * a[None, :]) / (a[:, None] * a[None, :]).sum()
  filt = filt[None, None].repeat(3, 1, 1, 1)
  expected = F.conv2d(F.pad(xt, [1, 2, 1, 2], mode="reflect"), filt, stride=2, groups=3)
  np.testing.assert_allclose(jaxup.blur_pool(xt.numpy(), layout="NCHW"), expected.numpy(),
                             rtol=1e-12, atol=1e-12)


def test_errors():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match=r"filter must be 1-D \(separable\) or have one axis per"):
    jaxup.upfirdn(x, jnp.ones((2, 2, 2)))
  with pytest.raises(ValueError, match="output size along axis 1 .* would be 0"):
    jaxup.upfirdn(x, jnp.ones(3), padding=-1)
  with pytest.raises(ValueError, match="up must be a positive int, got 0"):
    jaxup.upfirdn(x, jnp.ones(3), up=0)
  with pytest.raises(TypeError, match="x must have a floating-point dtype"):
    jaxup.upfirdn(jnp.zeros((1, 4, 4, 1), jnp.int32), jnp.ones(3))
  with pytest.raises(TypeError, match="flip_filter must be a bool"):
    jaxup.upfirdn(x, jnp.ones(3), flip_filter=1)
  with pytest.raises(ValueError, match="padding_mode must be one of 'reflect', 'replicate'"):
    jaxup.blur_pool(x, padding_mode="circular")
  with pytest.raises(ValueError, match="padding_mode='reflect' needs each padded spatial size"):
    jaxup.blur_pool(jnp.zeros((1, 2, 2, 1)), filter=[1.0, 4.0, 6.0, 4.0, 1.0])


@pytest.mark.parametrize("up,down,taps,size", [(1, 1, 3, 7), (2, 1, 4, 7), (3, 2, 5, 8),
                                               (2, 3, 3, 9), (1, 2, 4, 10), (4, 1, 2, 5)])
def test_equals_scipy_upfirdn_with_the_documented_padding(up, down, taps, size):
  signal = pytest.importorskip("scipy.signal")
  rng = np.random.default_rng(taps * size)
  x, h = rng.standard_normal(size), rng.standard_normal(taps)
  # The docstring's rule: scipy.signal.upfirdn(h, x, up, down) is padding [(K - 1, K - up)].
  got = jaxup.upfirdn(jnp.asarray(x)[None, :, None], jnp.asarray(h), up=up, down=down,
                      padding=[(taps - 1, taps - up)], layout="NWC")[0, :, 0]
  np.testing.assert_allclose(np.asarray(got), signal.upfirdn(h, x, up, down), rtol=1e-12,
                             atol=1e-12)


@pytest.mark.parametrize("bad", [[1.0, np.nan, 1.0], [1.0, np.inf], [-np.inf, 2.0]])
@pytest.mark.parametrize("fn", ["upfirdn", "blur_upsample", "blur_pool"])
def test_non_finite_filter_is_refused(fn, bad):
  x = jnp.ones((1, 8, 1))
  call = (lambda: jaxup.upfirdn(x, jnp.asarray(bad), up=2, layout="NWC")) if fn == "upfirdn" else (
      lambda: getattr(jaxup, fn)(x, 2, filter=bad, layout="NWC"))
  with pytest.raises(ValueError, match=r"filter must have finite taps .*got \["):
    call()


@pytest.mark.parametrize("fn", ["blur_upsample", "blur_pool"])
def test_zero_sum_filter_is_refused_where_it_is_normalised(fn):
  x = jnp.ones((1, 8, 8, 1))
  with pytest.raises(ValueError, match=r"filter must have a non-zero sum: it is normalised to "
                                       r"sum 1 .*got \[1.0, -1.0\] with sum 0"):
    getattr(jaxup, fn)(x, 2, filter=[1.0, -1.0])
  # upfirdn does not normalise: a zero-sum (high-pass) filter is an ordinary filter there.
  y = jaxup.upfirdn(jnp.arange(4.0)[None, :, None], jnp.array([1.0, -1.0]), layout="NWC")
  np.testing.assert_allclose(np.asarray(y)[0, :, 0], [1.0, 1.0, 1.0])


def test_traced_filter_is_not_checked():
  # A filter passed through jit is a tracer with no values to read: no error at trace time.
  y = jax.jit(lambda f: jaxup.upfirdn(jnp.ones((1, 4, 1)), f, layout="NWC"))(jnp.array([1.0, jnp.nan]))
  assert np.isnan(np.asarray(y)).all()
