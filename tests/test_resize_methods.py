"""Tests of resize's lanczos, Mitchell, Gaussian and area methods, and of scale_and_translate:
hand tables of the kernels' formulas, PyTorch / jax.image / TensorFlow-formula references,
adjoints against independently built down-samplers, gradients, jit == eager == vmap."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxup
from jaxup._src import resize_methods
from jaxup._src.layers import Resize
from jaxup import testing
from tests.helpers import assert_jit_eager_vmap, random

resize = jaxup.resize
scale_and_translate = jaxup.scale_and_translate


@functools.lru_cache(maxsize=None)
def _jitted(function, **options):
  return jax.jit(functools.partial(function, **options))


def _run(x, function=resize, **options):
  return np.asarray(_jitted(function, **options)(x))


def _line(values, out, method, **options):
  return _run(jnp.asarray(values, jnp.float64), size=out, method=method, layout="W",
              **options).tolist()


# Hand-computed tables ------------------------------------------------------------------------

VALUES = [1.0, 2.0, 4.0, 8.0]


def test_kernel_formula_tables():
  # Mitchell-Netravali B = C = 1/3: 8/9 at 0, 77/144 at 1/2, 1/18 at 1, -5/144 at 3/2, 0 at 2.
  np.testing.assert_allclose(resize_methods.mitchell_cubic(np.array([0, 0.5, 1, 1.5, 2, -0.5])),
                             [8 / 9, 77 / 144, 1 / 18, -5 / 144, 0, 77 / 144], atol=1e-15)
  # Lanczos3: 3 sin(pi d) sin(pi d / 3) / (pi d)^2: 6/pi^2 at 1/2, -4/(3 pi^2) at 3/2,
  # 0.24/pi^2 at 5/2, 0 from 3 on, exactly 1 within 1e-3 of 0 (TensorFlow's cut).
  lanczos3 = resize_methods.lanczos(3)
  np.testing.assert_allclose(lanczos3(np.array([0.5, 1.5, 2.5, 3.0, 3.5, 5e-4])),
                             [6 / np.pi**2, -4 / (3 * np.pi**2), 0.24 / np.pi**2, 0, 0, 1],
                             atol=1e-15)
  # Lanczos5 at 1/2: 5 sin(pi/2) sin(pi/10) / (pi/2)^2 = 20 sin(pi/10) / pi^2.
  assert resize_methods.lanczos(5)(np.array(0.5)) == pytest.approx(
      20 * math.sin(math.pi / 10) / math.pi**2, abs=1e-15)
  # Gaussian, sigma 1/2: exp(-2 d^2) below 1.5, zero from 1.5.
  np.testing.assert_allclose(resize_methods.gaussian(np.array([0, 0.5, 1.0, 1.49, 1.5])),
                             [1, math.exp(-0.5), math.exp(-2), math.exp(-2 * 1.49**2), 0])


def test_method_tables():
  # 4 -> 2: output 0 sits at x = 0.5 (taps -1..2 at distances 1.5, 0.5, 0.5, 1.5), output 1 at
  # x = 2.5. TensorFlow's conventions drop taps outside the input and renormalise.
  m = [-5 / 144, 77 / 144, 77 / 144, -5 / 144]
  expected = [(m[1] * 1 + m[2] * 2 + m[3] * 4) / (m[1] + m[2] + m[3]),
              (m[0] * 2 + m[1] * 4 + m[2] * 8) / (m[0] + m[1] + m[2])]
  np.testing.assert_allclose(_line(VALUES, 2, "mitchellcubic"), expected, rtol=1e-13)
  # Lanczos3 at x = 0.5: taps 0..3 at distances 0.5, 0.5, 1.5, 2.5.
  w = np.array([6, 6, -4 / 3, 0.24])
  assert _line(VALUES, 2, "lanczos3")[0] == pytest.approx(w @ VALUES / w.sum(), abs=1e-13)
  # Gaussian 4 -> 8: output 0 at x = -0.25 reads input 0 (distance 0.25) and 1 (1.25).
  a, b = math.exp(-2 * 0.25**2), math.exp(-2 * 1.25**2)
  assert _line(VALUES, 8, "gaussian")[0] == pytest.approx((a * 1 + b * 2) / (a + b), abs=1e-13)
  # The Gaussian does not interpolate: at the same size it still blurs (neighbours at 1 weigh
  # exp(-2)); border replication instead of exclusion counts the edge twice.
  c = math.exp(-2)
  assert _line(VALUES, 4, "gaussian")[0] == pytest.approx((1 + 2 * c) / (1 + c), abs=1e-13)
  assert _line(VALUES, 4, "gaussian", exclude_outside=False)[0] == pytest.approx(
      (1 + c * 1 + c * 2) / (1 + 2 * c), abs=1e-13)
  # Antialiased Mitchell 4 -> 2 stretches the kernel by 2: output 0 at x = 0.5 reads inputs
  # 0..3 at stretched distances 0.25, 0.25, 0.75, 1.25.
  k = resize_methods.mitchell_cubic(np.array([0.25, 0.25, 0.75, 1.25]))
  assert _line(VALUES, 2, "mitchellcubic", antialias=True)[0] == pytest.approx(
      k @ VALUES / k.sum(), abs=1e-13)


def test_area_tables():
  line = [0.0, 1.0, 2.0, 3.0, 4.0]
  # PyTorch's area is adaptive average pooling: 5 -> 2 averages [0, 3) and [2, 5).
  np.testing.assert_allclose(_line(line, 2, "area"), [1.0, 3.0])
  # 3 -> 4: [0, 1), [0, 2), [1, 3), [2, 3).
  np.testing.assert_allclose(_line([0.0, 3.0, 9.0], 4, "area"), [0.0, 1.5, 6.0, 9.0])
  # The pixel-area overlap (TensorFlow, jax.image): 5 -> 2 covers 2.5 pixels each.
  np.testing.assert_allclose(_line(line, 2, "area-overlap"),
                             [(0 + 1 + 0.5 * 2) / 2.5, (0.5 * 2 + 3 + 4) / 2.5])
  # 3 -> 4: output 1 covers [0.75, 1.5]: a quarter of pixel 0 and half of pixel 1.
  assert _line([0.0, 3.0, 9.0], 4, "area-overlap")[1] == pytest.approx((0.25 * 0 + 0.5 * 3) / 0.75)
  # Integer factors: both are block means.
  np.testing.assert_allclose(_line(line + [5.0], 3, "area"), _line(line + [5.0], 3, "area-overlap"))


def test_identity_sizes():
  # Interpolating kernels (zero at every non-zero integer) copy an axis that keeps its size;
  # Mitchell's (1/18 at distance 1) and the Gaussian do not.
  x = random((2, 5, 3, 2))
  for method in ("lanczos3", "lanczos5", "area", "area-overlap"):
    np.testing.assert_allclose(resize(x, (5, 3), method=method), x, rtol=1e-12, atol=1e-12)


# Reference implementations -------------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _image_resize(x, shape, method, antialias):
  return jax.image.resize(x, shape, method, antialias=antialias)


def test_jax_image_parity():
  """lanczos3 (with and without antialias), lanczos5 and area against jax.image.resize."""
  rng = np.random.default_rng(2)
  cases = [((2, 5, 7, 3), (9, 4)), ((1, 13, 6, 2), (4, 12)), ((1, 3, 4, 9, 1), (5, 2, 4))]
  for shape, out in cases:
    x = jnp.asarray(rng.standard_normal(shape))
    full = shape[:1] + out + shape[-1:]
    for method, antialias in (("lanczos3", False), ("lanczos3", True), ("lanczos5", True)):
      np.testing.assert_allclose(_run(x, size=out, method=method, antialias=antialias),
                                 _image_resize(x, full, method, antialias),
                                 rtol=1e-10, atol=1e-10, err_msg=str((shape, out, method)))
    np.testing.assert_allclose(_run(x, size=out, method="area-overlap"),
                               _image_resize(x, full, "area", True), rtol=1e-10, atol=1e-10)


def test_torch_area_parity():
  """PyTorch's interpolate(mode="area") in 1-D, 2-D and 3-D, up and down, sizes and scales."""
  torch = pytest.importorskip("torch")
  F = torch.nn.functional
  rng = np.random.default_rng(3)
  cases = [((7,), (3,), None), ((3,), (7,), None), ((9, 5), (4, 7), None),
           ((6, 10), None, (1.5, 0.35)), ((5, 4, 7), (2, 6, 3), None),
           ((4, 3, 5), None, (0.5, 2.0, 1.3))]
  for ins, outs, scale in cases:
    x = rng.standard_normal((2, 3) + ins)
    expected = F.interpolate(torch.from_numpy(x), size=outs, scale_factor=scale, mode="area")
    got = _run(x, size=outs, scale=scale, method="area", layout="NC" + "DHW"[3 - len(ins):])
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-12, atol=1e-12,
                               err_msg=str((ins, outs, scale)))


def _tf_spans(in_size, out_size, scale, translate, kernel, radius, antialias):
  """TensorFlow's ScaleAndTranslate weights, transcribed as its per-output span loop
  (``ComputeSpansCore``): a dense ``(out, in)`` matrix, for testing only."""
  matrix = np.zeros((out_size, in_size))
  inv_scale = 1 / scale
  kernel_scale = max(inv_scale, 1.0) if antialias else 1.0
  for i in range(out_size):
    sample = (i + 0.5) * inv_scale - translate * inv_scale
    if sample < 0 or sample > in_size:
      continue
    start = min(max(math.ceil(sample - radius * kernel_scale - 0.5), 0), in_size - 1)
    end = min(max(math.floor(sample + radius * kernel_scale - 0.5), 0), in_size - 1) + 1
    weights = [kernel(abs((j + 0.5 - sample) / kernel_scale)) for j in range(start, end)]
    total = sum(weights)
    if abs(total) >= 1000 * np.finfo(np.float32).tiny:
      matrix[i, start:end] = np.array(weights) / total
  return matrix


def _mitchell(d):
  # Written out from Mitchell and Netravali (1988) with B = C = 1/3.
  b = c = 1 / 3
  if d < 1:
    return ((12 - 9 * b - 6 * c) * d**3 + (-18 + 12 * b + 6 * c) * d**2 + (6 - 2 * b)) / 6
  if d < 2:
    return ((-b - 6 * c) * d**3 + (6 * b + 30 * c) * d**2 + (-12 * b - 48 * c) * d
            + (8 * b + 24 * c)) / 6
  return 0.0


def _lanczos(radius):
  def kernel(d):
    if d <= 1e-3:
      return 1.0
    if d > radius:
      return 0.0
    return radius * math.sin(math.pi * d) * math.sin(math.pi * d / radius) / (math.pi * d)**2
  return kernel


TF_KERNELS = {
    "mitchellcubic": (_mitchell, 2.0),
    "gaussian": (lambda d: math.exp(-d * d / (2 * 0.5**2)) if d < 1.5 else 0.0, 1.5),
    "lanczos3": (_lanczos(3), 3.0),
    "lanczos5": (_lanczos(5), 5.0),
    # sampling_kernels.h: the box is 1 inside (-1/2, 1/2), 1/2 on its edges; span radius 1.
    "box": (lambda d: 1.0 if d < 0.5 else 0.5 if d == 0.5 else 0.0, 1.0),
    "lanczos1": (_lanczos(1), 1.0),
}


@pytest.mark.parametrize("method", ["mitchellcubic", "gaussian"])
def test_tensorflow_formula_parity(method):
  """mitchellcubic and gaussian against TensorFlow's ScaleAndTranslate span loop written out
  with the kernels' published formulas (tf.image.resize uses scale = out / in, translation 0;
  antialias as given)."""
  kernel, radius = TF_KERNELS[method]
  rng = np.random.default_rng(4)
  for (h, w), (oh, ow) in [((5, 7), (9, 3)), ((11, 4), (4, 10)), ((6, 6), (6, 6))]:
    x = rng.standard_normal((1, h, w, 2))
    for antialias in (False, True):
      rows = _tf_spans(h, oh, oh / h, 0.0, kernel, radius, antialias)
      cols = _tf_spans(w, ow, ow / w, 0.0, kernel, radius, antialias)
      expected = np.einsum("ih,jw,nhwc->nijc", rows, cols, x)
      got = _run(x, size=(oh, ow), method=method, antialias=antialias)
      np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5))
def _image_scale_and_translate(x, shape, scale, translation, method, antialias):
  return jax.image.scale_and_translate(x, shape, (1, 2), jnp.array(scale),
                                       jnp.array(translation), method, antialias=antialias)


def test_scale_and_translate_parity():
  """scale_and_translate against jax.image.scale_and_translate (linear, cubic, lanczos3,
  lanczos5, area) and TensorFlow's span loop (mitchellcubic, gaussian), with shifts that move
  outputs off the input (zeros) and scales below and above 1."""
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.standard_normal((2, 9, 6, 2)))
  size, scale, translation = (7, 11), (0.6, 1.7), (1.3, -2.2)
  for method, antialias in (("linear", False), ("linear", True), ("cubic", True),
                            ("lanczos3", False), ("lanczos5", True), ("area-overlap", True)):
    expected = _image_scale_and_translate(
        x, (2, 7, 11, 2), scale, translation,
        "area" if method == "area-overlap" else method, antialias)
    got = _run(x, scale_and_translate, size=size, scale=scale, translation=translation,
               method=method, antialias=antialias)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=method)
  for method in ("mitchellcubic", "gaussian"):
    kernel, radius = TF_KERNELS[method]
    rows = _tf_spans(9, 7, scale[0], translation[0], kernel, radius, True)
    cols = _tf_spans(6, 11, scale[1], translation[1], kernel, radius, True)
    got = _run(x, scale_and_translate, size=size, scale=scale, translation=translation,
               method=method)
    np.testing.assert_allclose(got, np.einsum("ih,jw,nhwc->nijc", rows, cols, x),
                               rtol=1e-12, atol=1e-12, err_msg=method)


def test_box_and_lanczos1_tables():
  # 4 -> 8, half-pixel: x = -0.25, 0.25, 0.75, ... The box picks the nearest input.
  assert _line(VALUES, 8, "box") == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 8.0, 8.0]
  # 2 -> 1 without antialias: x = 0.5 lies on both edges, each input weighs 1/2.
  assert _line([2.0, 6.0], 1, "box") == [4.0]
  # Antialiased 4 -> 2: the box stretches to (-1, 1) around x = 0.5 and 2.5: pairs average.
  assert _line(VALUES, 2, "box", antialias=True) == [1.5, 6.0]
  # Stretched by 2 around x = 1 (scale 1/2, shift 1/2), inputs 0 and 2 lie on its edges.
  got = jaxup.scale_and_translate(jnp.asarray(VALUES), 1, scale=0.5, translation=-0.25,
                                  method="box", layout="W")
  np.testing.assert_allclose(got, [(0.5 * 1 + 2 + 0.5 * 4) / 2], rtol=1e-12)
  # lanczos1 is sinc(d)^2 inside |d| <= 1: 2 -> 4 reads x = -0.25 (the left border alone, the
  # other tap is outside), 0.25, 0.75, 1.25.
  w = math.sin(math.pi * 0.25) ** 2 / (math.pi * 0.25) ** 2
  v = math.sin(math.pi * 0.75) ** 2 / (math.pi * 0.75) ** 2
  np.testing.assert_allclose(_line([2.0, 6.0], 4, "lanczos1"),
                             [2.0, (2 * w + 6 * v) / (w + v), (2 * v + 6 * w) / (w + v), 6.0],
                             rtol=1e-12)


@pytest.mark.parametrize("method", ["box", "lanczos1"])
def test_box_and_lanczos1_scale_and_translate_match_tensorflow_spans(method):
  """TensorFlow's ScaleAndTranslate box and lanczos1 (which jax.image lacks) against its span
  loop written out above: the span is every source within the kernel radius times the
  stretch, edges included, clamped to the input; scales below and above one, shifts that
  take outputs off the input. The box is discontinuous at its edges, so its cases use scales
  whose inverses are exact in binary, where a tie is a tie in any order of rounding."""
  kernel, radius = TF_KERNELS[method]
  rng = np.random.default_rng(6)
  x = jnp.asarray(rng.standard_normal((2, 9, 6, 2)))
  cases = [((7, 11), (0.5, 2.0), (1.5, -2.25)), ((18, 3), (2.0, 0.5), (0.0, 0.0)),
           ((4, 12), (0.5, 2.0), (0.5, 1.0)), ((5, 7), (0.25, 4.0), (-0.25, 0.75))]
  if method == "lanczos1":
    cases += [((7, 11), (0.6, 1.7), (1.3, -2.2)), ((4, 12), (0.45, 2.1), (0.5, 1.0))]
  for size, scale, translation in cases:
    for antialias in (False, True):
      rows = _tf_spans(9, size[0], scale[0], translation[0], kernel, radius, antialias)
      cols = _tf_spans(6, size[1], scale[1], translation[1], kernel, radius, antialias)
      got = _run(x, scale_and_translate, size=size, scale=scale, translation=translation,
                 method=method, antialias=antialias)
      np.testing.assert_allclose(got, np.einsum("ih,jw,nhwc->nijc", rows, cols, x),
                                 rtol=1e-12, atol=1e-12, err_msg=str((size, antialias)))
  # resize with a size is scale_and_translate at scale out / in, translation 0.
  rows = _tf_spans(9, 3, 3 / 9, 0.0, kernel, radius, True)
  cols = _tf_spans(6, 12, 12 / 6, 0.0, kernel, radius, True)
  np.testing.assert_allclose(_run(x, size=(3, 12), method=method, antialias=True),
                             np.einsum("ih,jw,nhwc->nijc", rows, cols, x), rtol=1e-12,
                             atol=1e-12)


def _tf1_area_corners(in_size, out_size):
  """TensorFlow 1's ResizeArea with align_corners=True, as a dense matrix for testing:
  ``resize_area_op.cc``'s per-output loop (scale ``(in - 1) / (out - 1)``, or ``in / out`` for
  one output; cells ``floor(y s)`` to ``ceil((y + 1) s)``, the first and last partly, indices
  clamped into the input; the sum divided by ``s``)."""
  s = (in_size - 1) / (out_size - 1) if out_size > 1 else in_size / out_size
  matrix = np.zeros((out_size, in_size))
  for y in range(out_size):
    lo, hi = y * s, (y + 1) * s
    for i in range(math.floor(lo), math.ceil(hi)):
      if i < lo:
        weight = s if i + 1 > hi else i + 1 - lo
      else:
        weight = hi - i if i + 1 > hi else 1.0
      matrix[y, min(in_size - 1, max(0, i))] += weight / s
  return matrix


def test_tf1_area_align_corners_table():
  # 4 -> 3: s = 3/2, footprints [0, 1.5], [1.5, 3], [3, 4.5]; the last reads 1.5 of the last
  # pixel (the half past the input clamps to it).
  got = _line(VALUES, 3, "area-overlap", coordinate_transformation_mode="align_corners")
  np.testing.assert_allclose(got, [(1 + 0.5 * 2) / 1.5, (0.5 * 2 + 4) / 1.5, 8.0], rtol=1e-12)
  # Without the flag it is TensorFlow 2 / jax.image area: footprints of 4/3.
  assert _line(VALUES, 3, "area-overlap") != got


def test_tf1_area_align_corners_matches_the_kernel_loop():
  rng = np.random.default_rng(7)
  for (h, w), (oh, ow) in [((7, 5), (3, 9)), ((4, 11), (4, 2)), ((9, 6), (1, 4)),
                           ((1, 5), (3, 5))]:
    x = rng.standard_normal((2, h, w, 3))
    expected = np.einsum("ih,jw,nhwc->nijc", _tf1_area_corners(h, oh), _tf1_area_corners(w, ow),
                         x) if h > 1 else np.einsum("jw,nhwc->nhjc", _tf1_area_corners(w, ow),
                                                    np.repeat(x, oh, axis=1))
    got = _run(x, size=(oh, ow), method="area-overlap",
               coordinate_transformation_mode="align_corners")
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12, err_msg=str((h, w)))


def test_scale_and_translate_every_output_outside_is_zero():
  # A shift past the input leaves every tap weightless: all outputs are zero, as jax.image.
  got = jaxup.scale_and_translate(jnp.ones(4), 3, scale=1.0, translation=-10.0,
                                  method="linear", layout="W")
  np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])
  np.testing.assert_array_equal(got, jax.image.scale_and_translate(
      jnp.ones(4), (3,), (0,), jnp.array([1.0]), jnp.array([-10.0]), "linear"))


# Properties ----------------------------------------------------------------------------------


def _down(matrix, axis):
  """The named down-sampler: ``matrix.T`` applied along ``axis`` (a NumPy-built adjoint)."""
  return lambda y: jnp.moveaxis(jnp.tensordot(jnp.asarray(matrix.T), y, axes=([1], [axis])),
                                0, axis)


ADJOINT_CASES = [
    # (method, in, out, options): the forward matrix is rebuilt from the formulas above.
    ("lanczos3", 5, 9, {}),
    ("lanczos5", 12, 5, dict(antialias=True)),
    ("mitchellcubic", 9, 4, dict(antialias=True)),
    ("gaussian", 4, 7, {}),
    ("box", 5, 8, {}),
    ("box", 9, 4, dict(antialias=True)),
    ("lanczos1", 6, 11, {}),
    ("lanczos1", 10, 3, dict(antialias=True)),
]


@pytest.mark.parametrize("method, n, m, options", ADJOINT_CASES)
def test_adjoint_is_the_formula_downsampler(method, n, m, options):
  """<resize(x), y> == <x, W^T y> with W built from the kernel formula by TensorFlow's span
  loop, so the transpose of each method is the named weighted down-sampler W^T."""
  kernel, radius = TF_KERNELS[method]
  matrix = _tf_spans(n, m, m / n, 0.0, kernel, radius, options.get("antialias", False))
  up = jax.jit(lambda v: resize(v, m, method=method, axes="H", **options))
  testing.assert_adjoint(up, _down(matrix, 1), random((2, n, 3, 2)))


def test_area_adjoints():
  """PyTorch's area transposes to spreading each output's mean evenly over its window; the
  overlap area to spreading it by overlap fractions: both matrices built here from the
  window edges."""
  n, m = 7, 3
  pooling = np.zeros((m, n))
  for i in range(m):
    start, end = (i * n) // m, -(-(i + 1) * n // m)
    pooling[i, start:end] = 1 / (end - start)
  overlap = np.zeros((m, n))
  for i in range(m):
    lo, hi = i * n / m, (i + 1) * n / m
    for j in range(n):
      overlap[i, j] = max(0.0, min(hi, j + 1) - max(lo, j)) * m / n
  x = random((2, n, 3, 2))
  testing.assert_adjoint(jax.jit(lambda v: resize(v, m, method="area", axes="H")),
                         _down(pooling, 1), x)
  testing.assert_adjoint(jax.jit(lambda v: resize(v, m, method="area-overlap", axes="H")),
                         _down(overlap, 1), x)
  for n, m in ((7, 3), (3, 7)):
    x = random((2, n, 3, 2))
    corners = jax.jit(lambda v, m=m: resize(v, m, method="area-overlap", axes="H",
                                            coordinate_transformation_mode="align_corners"))
    testing.assert_adjoint(corners, _down(_tf1_area_corners(n, m), 1), x)


def test_check_grads_and_variants():
  # Linear maps: first order checks the derivative in full (the second is zero).
  x = random((1, 5, 4, 1))
  check_grads(jax.jit(lambda v: resize(v, (3, 7), method="lanczos3", antialias=True)), (x,),
              order=1, modes=("fwd", "rev"))
  check_grads(jax.jit(lambda v: resize(v, (2, 6), method="area")), (x,), order=1,
              modes=("rev",))
  check_grads(jax.jit(lambda v: scale_and_translate(v, (6, 3), scale=(1.4, 0.7),
                                                    translation=(0.3, -0.2), method="gaussian")),
              (x,), order=1, modes=("rev",))
  check_grads(jax.jit(lambda v: scale_and_translate(v, (6, 3), scale=(1.4, 0.7),
                                                    translation=(0.3, -0.2), method="box")),
              (x,), order=1, modes=("fwd", "rev"))
  check_grads(jax.jit(lambda v: resize(v, (3, 8), method="area-overlap",
                                       coordinate_transformation_mode="align_corners")),
              (x,), order=1, modes=("fwd", "rev"))
  for options in (dict(size=(7, 3), method="lanczos5"), dict(size=(3, 5), method="area-overlap"),
                  dict(size=(3, 5), method="lanczos1", antialias=True),
                  dict(size=(3, 5), method="area-overlap",
                       coordinate_transformation_mode="align_corners")):
    assert_jit_eager_vmap(lambda v: resize(v, **options), random((3, 4, 6, 2)))


def test_wide_filters_loop_and_dtypes():
  # Lanczos5 downsampling by 4 has 40 taps: they loop instead of unrolling, same numbers.
  x = random((1, 40, 3, 1))
  looped = jax.jit(lambda v: resize(v, (10, 3), method="lanczos5", antialias=True))
  assert "while" in looped.lower(x).as_text()
  expected = _image_resize(x, (1, 10, 3, 1), "lanczos5", True)
  np.testing.assert_allclose(looped(x), expected, rtol=1e-10, atol=1e-10)
  # Integer images are interpolated in floating point and truncated back.
  image = jnp.array([0, 255, 0, 255, 0], jnp.uint8)
  got = resize(image, 9, method="lanczos3", layout="W")
  exact = np.asarray(resize(image.astype(jnp.float64), 9, method="lanczos3", layout="W"))
  assert got.dtype == jnp.uint8
  np.testing.assert_array_equal(got, np.clip(np.trunc(exact), 0, 255).astype(np.uint8))
  got = resize(random((1, 6, 5, 2), jnp.float32), (3, 9), method="mitchellcubic")
  assert got.dtype == jnp.float32


def test_no_dense_weight_matrix():
  x = jax.ShapeDtypeStruct((2, 50, 40, 3), jnp.float32)
  for options in (dict(size=(77, 13), method="lanczos3"), dict(size=(10, 9), method="area"),
                  dict(size=(33, 61), method="area-overlap"),
                  dict(size=(20, 90), method="gaussian", antialias=True)):
    jaxpr = jax.jit(lambda v: resize(v, **options)).lower(x).as_text()  # the lowered program
    assert "dot_general" not in jaxpr and "conv" not in jaxpr, options


def test_errors():
  x = jnp.zeros((1, 4, 4, 1))
  with pytest.raises(ValueError, match="method must be one of 'linear', 'cubic', 'box', "
                     "'lanczos1', 'lanczos3', .* for scale_and_translate, got 'area'"):
    scale_and_translate(x, 8, scale=2.0, translation=0.0, method="area")
  with pytest.raises(ValueError, match="coordinate_transformation_mode='half_pixel' does not "
                     "apply to method='area-overlap'.*only 'align_corners'"):
    resize(x, 2, method="area-overlap", coordinate_transformation_mode="half_pixel")
  with pytest.raises(ValueError, match="coordinate_transformation_mode='align_corners' does not "
                     "apply to method='area'"):
    resize(x, 2, method="area", coordinate_transformation_mode="align_corners")
  with pytest.raises(ValueError, match="align_corners=True does not apply to "
                     "method='area-overlap'"):
    resize(x, 2, method="area-overlap", align_corners=True)
  with pytest.raises(ValueError, match="method must be one of .*'box', 'lanczos1'"):
    resize(x, 2, method="boxes")
  with pytest.raises(ValueError, match="scale must be positive, got 0.0"):
    scale_and_translate(x, 8, scale=0.0, translation=0.0, method="linear")
  with pytest.raises(TypeError, match="translation must be a number or a sequence of 2 numbers, got 'left'"):
    scale_and_translate(x, 8, scale=2.0, translation="left", method="linear")
  with pytest.raises(TypeError, match="Resize: resize\\(\\): missing a required argument: "
                     "'method'; resize has no default method"):
    Resize(size=2)
  with pytest.raises(TypeError, match="resize takes method=, not mode="):
    Resize(scale=2, mode="nearest")
