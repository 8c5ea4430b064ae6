"""The interpolation methods of :func:`jaxup.resize`, one table row each.

A method is a kernel (the weight of an input pixel at signed distance ``d`` from the source
coordinate), its support radius, the conventions its reference framework uses by default
(coordinate transformation, nearest rounding, border handling) and whether antialiasing
applies to it. Everything here is NumPy, evaluated once per axis at trace time in float64;
the array itself is touched only by the gathers in :mod:`jaxup._src.resize`.

The kernels follow the definitions of their references:

* ``linear``: the triangle :math:`\\max(0, 1 - |d|)`.
* ``cubic``: Keys' cubic convolution with coefficient :math:`a` (Keys 1981, eq. 4).
* ``box``: TensorFlow's rectangle, 1 for :math:`|d| < 1/2`, :math:`1/2` at :math:`|d| = 1/2`,
  0 beyond, with TensorFlow's span radius 1 (``sampling_kernels.h``, ``BoxKernelFunc``).
* ``lanczos1``, ``lanczos3``, ``lanczos5``: :math:`\\operatorname{sinc}(d)\\operatorname{sinc}(d/R)` for
  :math:`|d| \\le R`, with the value 1 for :math:`|d| \\le 10^{-3}` as TensorFlow's
  ``sampling_kernels.h`` and ``jax.image`` evaluate it.
* ``mitchellcubic``: Mitchell and Netravali's cubic with :math:`B = C = 1/3` (SIGGRAPH 1988).
* ``gaussian``: :math:`\\exp(-d^2 / (2\\sigma^2))` with :math:`\\sigma = 1/2`, cut at
  :math:`|d| < 3\\sigma = 1.5` (TensorFlow's ``GaussianKernelFunc``).
* ``area``, ``area-overlap``: box averages over the output pixel's footprint, computed from the
  footprint's edges rather than from a kernel (see :func:`area_taps`, :func:`overlap_taps`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import numpy as np


def triangle(d, a=None):
  """The linear-interpolation (tent) kernel."""
  del a
  return np.maximum(0.0, 1 - np.abs(d))


def keys_cubic(d, a):
  """Keys' cubic convolution kernel with coefficient ``a`` (Keys 1981, eq. 4)."""
  d = np.abs(d)
  inner = ((a + 2) * d - (a + 3)) * d * d + 1
  outer = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
  return np.where(d <= 1, inner, np.where(d < 2, outer, 0.0))


def lanczos(radius):
  """The Lanczos kernel of ``radius``: ``sinc(d) sinc(d / radius)`` inside the radius."""

  def kernel(d, a=None):
    del a
    d = np.abs(d)
    value = np.sinc(d) * np.sinc(d / radius)
    return np.where(d > radius, 0.0, np.where(d <= 1e-3, 1.0, value))

  return kernel


def mitchell_cubic(d, a=None):
  """Mitchell-Netravali's cubic with ``B = C = 1/3``."""
  del a
  d = np.abs(d)
  inner = ((7 / 6 * d - 2) * d) * d + 8 / 9
  outer = ((-7 / 18 * d + 2) * d - 10 / 3) * d + 16 / 9
  return np.where(d < 1, inner, np.where(d < 2, outer, 0.0))


def box(d, a=None):
  """TensorFlow's box: 1 inside ``|d| < 1/2``, 1/2 on the edges, 0 outside."""
  del a
  d = np.abs(d)
  return np.where(d < 0.5, 1.0, np.where(d == 0.5, 0.5, 0.0))


GAUSSIAN_RADIUS = 1.5
GAUSSIAN_SIGMA = GAUSSIAN_RADIUS / 3


def gaussian(d, a=None):
  """TensorFlow's Gaussian kernel: ``sigma = 0.5``, zero from ``|d| >= 1.5``."""
  del a
  d = np.abs(d)
  return np.where(d < GAUSSIAN_RADIUS, np.exp(-d * d / (2 * GAUSSIAN_SIGMA**2)), 0.0)


@dataclasses.dataclass(frozen=True)
class Method:
  """One interpolation method: its kernel and its reference's conventions.

  Attributes:
    name: the canonical name.
    kind: ``"nearest"`` (a rounded source coordinate), ``"kernel"`` (a weighted sum of the
      taps within ``radius``), ``"area"`` (PyTorch's adaptive average) or ``"overlap"`` (the
      exact pixel-area average).
    kernel: the weight at signed distance ``d`` (a float64 array), given the cubic
      coefficient; ``None`` for the other kinds.
    radius: where the kernel vanishes (distance in input pixels, before antialias stretching).
    coordinates: the default coordinate transformation (ONNX name).
    nearest_mode: the default rounding of a nearest method.
    exclude_outside: whether the reference drops taps outside the input and renormalises
      (``True``), or replicates the border (``False``) by default.
    antialias: whether ``antialias=True`` applies (the kernel stretches when downsampling).
    reference: the frameworks whose definition the defaults reproduce.
  """

  name: str
  kind: str
  kernel: Optional[Callable] = None
  radius: float = 0.0
  coordinates: str = "half_pixel"
  nearest_mode: Optional[str] = None
  exclude_outside: bool = False
  antialias: bool = False
  reference: str = ""


METHODS = {
    m.name: m for m in (
        Method("nearest", "nearest", coordinates="asymmetric", nearest_mode="floor",
               reference="PyTorch nearest, ONNX nearest"),
        Method("nearest-exact", "nearest", nearest_mode="round_prefer_ceil",
               reference="PyTorch nearest-exact, TensorFlow 2 and jax.image nearest"),
        Method("linear", "kernel", triangle, 1.0, antialias=True,
               reference="PyTorch (bi/tri)linear, TensorFlow, jax.image, ONNX linear"),
        Method("cubic", "kernel", keys_cubic, 2.0, antialias=True,
               reference="PyTorch bicubic, TensorFlow, jax.image, ONNX cubic"),
        Method("box", "kernel", box, 1.0, exclude_outside=True, antialias=True,
               reference="TensorFlow ScaleAndTranslate box"),
        Method("lanczos1", "kernel", lanczos(1), 1.0, exclude_outside=True, antialias=True,
               reference="TensorFlow ScaleAndTranslate lanczos1"),
        Method("lanczos3", "kernel", lanczos(3), 3.0, exclude_outside=True, antialias=True,
               reference="TensorFlow, Keras and jax.image lanczos3"),
        Method("lanczos5", "kernel", lanczos(5), 5.0, exclude_outside=True, antialias=True,
               reference="TensorFlow, Keras and jax.image lanczos5"),
        Method("mitchellcubic", "kernel", mitchell_cubic, 2.0, exclude_outside=True,
               antialias=True, reference="TensorFlow mitchellcubic"),
        Method("gaussian", "kernel", gaussian, GAUSSIAN_RADIUS, exclude_outside=True,
               antialias=True, reference="TensorFlow gaussian"),
        Method("area", "area", reference="PyTorch area (adaptive average pooling)"),
        Method("area-overlap", "overlap",
               reference="TensorFlow area, jax.image area"),
    )
}

ALIASES = {
    "nearest_exact": "nearest-exact",
    "bilinear": "linear",
    "trilinear": "linear",
    "triangle": "linear",
    "bicubic": "cubic",
    "tricubic": "cubic",
    "mitchell": "mitchellcubic",
    "area_overlap": "area-overlap",
}


def nearest_taps(x, mode):
  """The one tap of every output: ``x`` rounded by ``mode`` (ONNX ``nearest_mode``)."""
  base = np.floor(x)
  frac = x - base
  if mode == "round_prefer_floor":
    up = frac > 0.5
  elif mode == "round_prefer_ceil":
    up = frac >= 0.5
  elif mode == "ceil":
    up = frac > 0
  else:
    up = np.zeros_like(frac, dtype=bool)
  return (base + up).astype(np.int64)[:, None]


def kernel_taps(x, in_size, filter_scale, kernel, radius, a, exclude_outside):
  """Taps and weights of ``kernel`` at source coordinates ``x``.

  The kernel is stretched by ``1 / filter_scale`` (``filter_scale`` is 1 without antialias):
  tap ``j`` has weight ``K((j - x) * filter_scale)``, over the ``2 * ceil(r / filter_scale)``
  taps around ``x`` where a kernel of radius ``r`` can be non-zero. Weights are normalised to
  sum to one (a no-op for the interpolating kernels, needed for the others and after
  ``exclude_outside`` drops the taps outside ``[0, in_size)``).
  """
  half = max(1, math.ceil(radius / filter_scale * (1 - 1e-12)))
  taps = np.floor(x).astype(np.int64)[:, None] + np.arange(1 - half, 1 + half)[None, :]
  weights = kernel((taps - x[:, None]) * filter_scale, a)
  if exclude_outside:
    weights = np.where((taps < 0) | (taps >= in_size), 0.0, weights)
  total = weights.sum(axis=1, keepdims=True)
  # As TensorFlow and jax.image: a vanishing total gives zero weights, not a division by ~0.
  weights = np.where(np.abs(total) > 1e-12, weights / np.where(total == 0, 1.0, total), 0.0)
  return taps, weights


def _padded(starts, counts, weights_of):
  """Tap matrices from per-output ``[start, start + count)`` ranges, zero-weight padded."""
  width = int(counts.max())
  taps = starts[:, None] + np.arange(width)[None, :]
  valid = np.arange(width)[None, :] < counts[:, None]
  weights = np.where(valid, weights_of(taps), 0.0)
  return np.where(valid, taps, starts[:, None]), weights


def corner_area_taps(in_size, out_size, length):
  """TensorFlow 1's ``resize_area(align_corners=True)`` (``resize_area_op.cc``).

  With ``r = (in - 1) / (L - 1)`` (``in / L`` for ``L = 1``; ``L`` the output length), output
  ``i`` is the average of the input over ``[i r, (i + 1) r]``, each pixel ``[j, j + 1]``
  weighted by its overlap, divided by ``r``. The last footprints reach past the input when
  downsampling; those parts read the border pixel (TensorFlow clamps the index). An input of
  one pixel (``r = 0``, where TensorFlow divides by zero) is replicated.
  """
  r = (in_size - 1) / (length - 1) if length > 1 else in_size / length
  i = np.arange(out_size)
  if r == 0:
    return np.zeros((out_size, 1), np.int64), np.ones((out_size, 1))
  lo, hi = i * r, (i + 1) * r
  starts = np.floor(lo).astype(np.int64)
  counts = np.maximum(np.ceil(hi).astype(np.int64) - starts, 1)

  def weights_of(taps):
    overlap = np.minimum(taps + 1, hi[:, None]) - np.maximum(taps, lo[:, None])
    return np.maximum(overlap, 0.0) / r

  return _padded(starts, counts, weights_of)


def area_taps(in_size, out_size):
  """PyTorch's ``area`` (adaptive average pooling): output ``i`` is the plain mean of input
  ``floor(i * in / out)`` to ``ceil((i + 1) * in / out) - 1``."""
  i = np.arange(out_size)
  starts = (i * in_size) // out_size
  ends = -((-(i + 1) * in_size) // out_size)
  counts = ends - starts
  return _padded(starts, counts, lambda taps: np.broadcast_to(1.0 / counts[:, None], taps.shape))


def overlap_taps(x, in_size, width):
  """The pixel-area average (TensorFlow's and ``jax.image``'s ``area``).

  Output ``i`` covers the interval of length ``width`` centred on input coordinate ``x[i]``
  (pixel ``j`` covers ``[j - 1/2, j + 1/2]``); each input pixel weighs the length of its
  overlap with it, normalised to sum to one over the pixels inside the input.
  """
  lo = x - width / 2 + 0.5
  hi = x + width / 2 + 0.5
  starts = np.clip(np.floor(lo).astype(np.int64), 0, in_size - 1)
  ends = np.clip(np.ceil(hi).astype(np.int64), 1, in_size)
  counts = np.maximum(ends - starts, 1)

  def weights_of(taps):
    overlap = np.minimum(taps + 1, hi[:, None]) - np.maximum(taps, lo[:, None])
    overlap = np.where((taps >= 0) & (taps < in_size), np.maximum(overlap, 0.0), 0.0)
    total = overlap.sum(axis=1, keepdims=True)
    return np.where(total > 0, overlap / np.where(total > 0, total, 1.0), 0.0)

  taps, weights = _padded(starts, counts, weights_of)
  return taps, weights


# PyTorch's uint8 kernels -------------------------------------------------------------------
#
# PyTorch resizes uint8 images (bilinear and bicubic, with or without antialiasing) in fixed
# point: per axis it computes float64 weights, scales them by 2**p to int16 (p the largest
# precision at which the axis' largest weight stays below 2**15), and each pass computes
# ``clamp((2**(p-1) + sum_k w_k x_k) >> p, 0, 255)``: rounded half up and saturated per pass,
# the last spatial axis first (``UpSampleKernel.cpp``: ``_compute_index_ranges_int16_weights``,
# ``basic_loop_aa_horizontal<uint8_t>``, ``separable_upsample_generic_Nd_kernel_impl``).


def torch_scale(in_size, out_size, scale, align_corners):
  """PyTorch's ``area_pixel_compute_scale`` in float64 (``scale``: the given factor or None)."""
  if align_corners:
    return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
  return 1.0 / scale if scale is not None and scale > 0 else in_size / out_size


def _torch_filter(cubic, antialias):
  """PyTorch's ``aa_filter``: the tent, or Keys' cubic with a = -0.5 (antialiased) / -0.75."""
  if not cubic:
    return lambda d: np.where(np.abs(d) < 1.0, 1.0 - np.abs(d), 0.0)
  a = -0.5 if antialias else -0.75
  def cubic_filter(d):
    d = np.abs(d)
    inner = ((a + 2) * d - (a + 3)) * d * d + 1
    outer = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d < 1.0, inner, np.where(d < 2.0, outer, 0.0))
  return cubic_filter


def _torch_antialias_weights(in_size, out_size, r, interp, f):
  """Per output: first tap, tap count and normalised weights of the stretched filter."""
  support = interp * 0.5 * r if r >= 1.0 else interp * 0.5
  width = int(math.ceil(support)) * 2 + 1
  invscale = 1.0 / r if r >= 1.0 else 1.0
  center = r * (np.arange(out_size) + 0.5)
  start = np.maximum(np.trunc(center - support + 0.5).astype(np.int64), 0)
  count = np.minimum(np.trunc(center + support + 0.5).astype(np.int64), in_size) - start
  count = np.clip(count, 0, width)
  k = np.arange(width)[None, :]
  valid = k < count[:, None]
  weights = np.where(valid, f((k + start[:, None] - center[:, None] + 0.5) * invscale), 0.0)
  total = np.cumsum(weights, axis=1)[:, -1]  # summed in tap order, as there
  normalised = total != 0
  weights = np.where(normalised[:, None],
                     weights / np.where(normalised, total, 1.0)[:, None], weights)
  largest = float(weights[normalised].max()) if normalised.any() else 0.0
  return start, count, weights, max(largest, 0.0)


def _torch_plain_weights(in_size, out_size, r, interp, f, align_corners):
  """Per output: first tap, count and the weights of the taps PyTorch folds onto the border."""
  cubic = interp > 2
  i = np.arange(out_size, dtype=np.float64)
  if align_corners:
    real = r * i
  else:
    real = r * (i + 0.5) - 0.5
    if not cubic:
      real = np.maximum(real, 0.0)
  # guard_index_and_lambda floors in float32 (floorf), then clamps.
  index = np.minimum(np.floor(real.astype(np.float32)).astype(np.int64), in_size - 1)
  lam = np.minimum(np.maximum(real - index, 0.0), 1.0)
  half = interp // 2
  lowest = index - half + 1
  start = np.maximum(lowest, 0)
  count = np.clip(np.minimum(index + half + 1, in_size) - start, 0, interp)
  weights = np.zeros((out_size, interp))
  rows = np.arange(out_size)
  slot = np.zeros(out_size, dtype=np.int64)
  largest = 0.0
  for j in range(interp):
    w = f(float(j + 1 - half) - lam)
    position = lowest + j
    slot = np.where(position <= 0, 0, np.where(position >= in_size - 1, count - 1, slot))
    weights[rows, slot] += w
    largest = max(largest, float(weights[rows, slot].max()))
    slot = slot + 1
  return start, count, weights, largest


def torch_uint8_taps(in_size, out_size, scale, align_corners, cubic, antialias):
  """PyTorch's fixed-point taps of one axis for uint8 bilinear / bicubic.

  Returns ``(taps, weights, precision)``: ``taps`` ``[out, K]`` input indices (unused slots
  repeat the first tap with weight 0), ``weights`` the int16 values as int64, and the
  precision ``p`` with which output ``i`` is ``(2**(p-1) + sum_k weights[i, k] *
  x[taps[i, k]]) >> p``, clamped to [0, 255].
  """
  r = torch_scale(in_size, out_size, scale, align_corners)
  interp = 4 if cubic else 2
  f = _torch_filter(cubic, antialias)
  if antialias:
    start, count, weights, largest = _torch_antialias_weights(in_size, out_size, r, interp, f)
  else:
    start, count, weights, largest = _torch_plain_weights(in_size, out_size, r, interp, f,
                                                          align_corners)
  precision = 0
  while precision < 22 and int(0.5 + largest * (1 << (precision + 1))) < (1 << 15):
    precision += 1
  scaled = weights * (1 << precision)
  fixed = np.where(scaled < 0, np.trunc(-0.5 + scaled), np.trunc(0.5 + scaled)).astype(np.int64)
  k = np.arange(weights.shape[1])[None, :]
  valid = k < count[:, None]
  taps = np.where(valid, start[:, None] + k, start[:, None])
  return taps, np.where(valid, fixed, 0), precision
