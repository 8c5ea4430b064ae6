"""The interpolation methods of :func:`jaxup.resize`, one table row each.

A method is a kernel (the weight of an input pixel at signed distance ``d`` from the source
coordinate), its support radius, the conventions its reference framework uses by default
(coordinate transformation, nearest rounding, border handling) and whether antialiasing
applies to it. Everything here is NumPy, evaluated once per axis at trace time in float64;
the array itself is touched only by the gathers in :mod:`jaxup._src.resize`.

The kernels follow the definitions of their references:

* ``linear``: the triangle :math:`\\max(0, 1 - |d|)`.
* ``cubic``: Keys' cubic convolution with coefficient :math:`a` (Keys 1981, eq. 4).
* ``lanczos3``, ``lanczos5``: :math:`\\operatorname{sinc}(d)\\operatorname{sinc}(d/R)` for
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
