"""upfirdn: upsample by zero insertion, FIR-filter, downsample; and the blurs built on it.

Along one axis, with upsampling factor ``u``, downsampling factor ``d``, padding ``(p0, p1)``
and a filter ``f`` of ``K`` taps, StyleGAN2's ``upfirdn2d`` (Karras et al. 2020) computes

1. ``z``: ``x`` with ``u - 1`` zeros after every sample (length ``n u``);
2. ``z`` padded with ``p0`` zeros in front and ``p1`` behind (a negative pad crops);
3. ``v = z * f``: a true convolution, keeping the ``n u + p0 + p1 - K + 1`` fully overlapping
   positions (a correlation with the flipped filter; ``flip_filter=True`` correlates with
   ``f`` itself);
4. ``y = v[::d]``.

Here that is computed polyphase and never forms ``z`` or ``v``. With ``g`` the correlation
filter, output ``o`` is ``y[o] = sum_j g[r + j u] x[b + j]``, where ``q = o d - p0``,
``r = -q mod u`` and ``b = (q + r) / u``: each output reads one decimated sub-filter
``g[r::u]`` (a static slice) and consecutive inputs. The phase ``r`` repeats with period
``T = u / gcd(u, d)`` in ``o``, and along one phase ``b`` advances by ``d / gcd(u, d)``; so each
of the ``T`` output phases is a correlation of ``x`` with its sub-filter at that stride,
computed as a sum of strided slices of ``x`` (one per sub-filter tap), and the phases are
interleaved by a reshape. No inserted zero is multiplied, no discarded output is computed,
and no convolution with input dilation is emitted (neither by this function nor its
derivatives: the transpose of a strided slice is a padding).
"""

from __future__ import annotations

import functools
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxup._src import checks, sharding
from jaxup._src.geometry import IntOrSeq, Padding, normalize_padding
from jaxup._src.layout import parse_layout, spatial_ranks

PADDING_MODES = ("reflect", "replicate", "zeros")
_JNP_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "zeros": "constant"}


def _axis_plan(n: int, k: int, up: int, down: int, lo: int, hi: int):
  """The polyphase plan of one axis: output size and, per output phase, (sub-filter taps, start).

  Returns ``(out, period, stride, phases)`` where output ``t * period + ph`` is
  ``sum_j g[taps[j]] x[start + t * stride + j]`` for ``phases[ph] = (taps, start)``.
  """
  out = (n * up + lo + hi - k + down) // down
  g = math.gcd(up, down)
  period, stride = up // g, down // g
  phases = []
  for ph in range(min(period, max(out, 0))):
    q = ph * down - lo
    r = (-q) % up
    phases.append((tuple(range(r, k, up)), (q + r) // up))
  return out, period, stride, tuple(phases)


def _strided(x: jax.Array, axis: int, start: int, count: int, stride: int) -> jax.Array:
  """``x[start : start + (count - 1) * stride + 1 : stride]`` along ``axis``."""
  starts = [0] * x.ndim
  limits = list(x.shape)
  strides = [1] * x.ndim
  starts[axis], limits[axis], strides[axis] = start, start + (count - 1) * stride + 1, stride
  return lax.slice(x, starts, limits, strides)


def _upfirdn_axes(x, taps_of, axes, plans):
  """Applies the polyphase plans of ``axes`` jointly; ``taps_of(idx)`` gives a filter value.

  ``idx`` is a tuple of filter indices, one per axis in ``axes``. Every output phase
  combination is a sum over the sub-filter's taps of strided slices of the padded ``x``.
  """
  # Pad (or crop) x once so that every slice below lies inside it.
  pads = [(0, 0, 0)] * x.ndim
  shifts = []
  for axis, (out, period, stride, phases) in zip(axes, plans):
    count = -(-out // period)
    first = min(start for _, start in phases)
    last = max(start + (count - 1) * stride + max(len(taps) - 1, 0) for taps, start in phases)
    pads[axis] = (-first, last - (x.shape[axis] - 1), 0)
    shifts.append(-first)
  xp = lax.pad(x, jnp.zeros((), x.dtype), pads)

  counts = [-(-out // period) for out, period, _, _ in plans]

  def phase_sum(combo):
    """One output phase combination: ``combo`` holds one (taps, start) per axis."""
    if any(len(taps) == 0 for taps, _ in combo):  # a phase meeting no tap (K < up) is zero
      shape = list(xp.shape)
      for axis, count in zip(axes, counts):
        shape[axis] = count
      return jnp.zeros(shape, xp.dtype)
    acc = None
    for offsets in np.ndindex(*[len(taps) for taps, _ in combo]):
      term = xp
      for axis, (taps, start), j, shift, count, plan in zip(
          axes, combo, offsets, shifts, counts, plans):
        term = _strided(term, axis, start + j + shift, count, plan[2])
      term = term * taps_of(tuple(taps[j] for (taps, _), j in zip(combo, offsets)))
      acc = term if acc is None else acc + term
    return acc

  # Interleave: stack the phases of each axis right after it, merge, crop to the output size.
  def build(level, prefix):
    if level == len(axes):
      return phase_sum(prefix)
    axis, (_, period, _, phases) = axes[level], plans[level]
    parts = [build(level + 1, prefix + [p]) for p in phases]
    parts += [jnp.zeros_like(parts[0])] * (period - len(parts))
    if period == 1:
      return parts[0]
    stacked = jnp.stack(parts, axis=axis + 1)
    shape = list(parts[0].shape)
    shape[axis] *= period
    return lax.reshape(stacked, tuple(shape))

  y = build(0, [])
  return lax.slice(y, [0] * y.ndim, [
      plans[axes.index(a)][0] if a in axes else s for a, s in enumerate(y.shape)])


def upfirdn(
    x: jax.typing.ArrayLike,
    filter: jax.typing.ArrayLike,
    *,
    up: IntOrSeq = 1,
    down: IntOrSeq = 1,
    padding: Padding = 0,
    gain: float = 1.0,
    flip_filter: bool = False,
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Upsamples by zero insertion, applies an FIR filter, downsamples: StyleGAN2's ``upfirdn2d``.

  ``[N, *S, C] -> [N, *S_out, C]`` for the default layout, ``N`` the batch, ``S`` the ``n``
  spatial sizes (1-D, 2-D or 3-D), ``C`` the channels (filtered independently), where along
  each axis, with factors ``u`` (``up``), ``d`` (``down``), padding ``(p_0, p_1)`` and filter
  length ``K``:

  .. math::
    S_{out} = \left\lfloor \frac{S u + p_0 + p_1 - K + d}{d} \right\rfloor, \qquad
    y = \Big(\operatorname{pad}_{p_0, p_1}\big(\operatorname{zero\_insert}_u(x)\big) * f\Big)[::d]

  where ``zero_insert_u`` puts ``u - 1`` zeros after every sample (length ``S u``), the padding
  is applied after upsampling (negative values crop), ``*`` is a true convolution over the
  fully overlapping positions (a correlation with the flipped filter), and ``[::d]`` keeps
  every ``d``-th sample. This is ``upfirdn2d.upfirdn2d`` of StyleGAN2-ADA-PyTorch
  (``torch_utils/ops/upfirdn2d.py``) with its reference implementation's semantics, for any
  number of spatial axes; StyleGAN2's ``padding=[px0, px1, py0, py1]`` is
  ``padding=((py0, py1), (px0, px1))`` here (axes in layout order), and ``up=[ux, uy]`` is
  ``up=(uy, ux)``. It is also ``scipy.signal.upfirdn(filter, x, up, down)`` (1-D, with
  ``padding=[(K - 1, K - u)]``, the high side negative when ``u > K``).

  The output is computed polyphase: each output phase correlates ``x`` with a decimated
  sub-filter (a static slice of the filter) at the downsampling stride, so no inserted zero is
  multiplied and no discarded sample is computed; a 1-D filter is applied along each axis in
  turn. The transpose (``jax.linear_transpose``, the VJP) is ``upfirdn`` of the cotangent with
  ``up`` and ``down`` exchanged, the filter flipped (``flip_filter`` negated) and padding
  ``(K - 1 - p_0, (S - 1) u + K - S_out d - (K - 1 - p_0))`` per axis, the same ``gain``.

  Args:
    x: the input ``[N, *S, C]`` (or as ``layout`` says), floating point.
    filter: the FIR filter: 1-D ``[K]``, applied separably along every spatial axis, or n-D
      ``[K_1, ..., K_n]`` (one axis per spatial axis, not separable). May be traced (learned).
    up: the upsampling factor, a positive int or one per spatial axis.
    down: the downsampling factor, a positive int or one per spatial axis.
    padding: applied after upsampling: an int (both sides of every axis), one int per axis, or
      one ``(lo, hi)`` pair per axis; negative values crop.
    gain: overall scale of the output. A 1-D filter is scaled by ``gain ** (1 / n)`` on each of
      the ``n`` axes, an n-D filter by ``gain``, as StyleGAN2 scales its filter by
      ``gain ** (f.ndim / 2)`` in 2-D.
    flip_filter: ``False`` convolves (StyleGAN2's default), ``True`` correlates.
    layout: the layout string, e.g. ``"NCHW"`` for PyTorch ports or ``"HW"``; ``None`` is
      channels-last with a batch axis by rank (``NWC``, ``NHWC``, ``NDHWC``). The channel axis
      is optional.

  Returns:
    ``[N, *S_out, C]`` in ``x``'s dtype (with the filter cast to it) and layout.

  Raises:
    TypeError: if ``x`` or ``filter`` is not a floating/real array, a factor or padding is not
      an int, ``gain`` not a number or ``flip_filter`` not a bool.
    ValueError: if a factor is not positive, the filter's rank is neither 1 nor the number of
      spatial axes, a filter axis is empty, a concrete filter has a NaN or infinite tap (a
      traced filter is not checked), or an output size would be below 1.

  Example:
    Upsampling by 2 with the filter ``[1, 1]`` repeats each sample (nearest upsampling):

    >>> import jax.numpy as jnp
    >>> print(upfirdn(jnp.array([1.0, 2.0, 3.0]), jnp.array([1.0, 1.0]), up=2,
    ...               padding=[(1, 0)], layout="W"))
    [1. 1. 2. 2. 3. 3.]
    >>> print(upfirdn(jnp.arange(6.0), jnp.array([0.5, 0.5]), down=2, layout="W"))
    [0.5 2.5 4.5]
  """
  x = checks.array(x, "x", kind="floating")
  parsed = parse_layout(layout, x.ndim, require_channels=False,
                        num_spatial=spatial_ranks(layout, x.ndim, up, down))
  n = parsed.num_spatial
  f = checks.array(filter, "filter", kind="real")
  check_filter_values(f, "filter")
  f = f.astype(x.dtype)
  ups = checks.ints(up, n, "up")
  downs = checks.ints(down, n, "down")
  pads = normalize_padding(padding, n, allow_strings=False, allow_negative=True)
  gain = checks.number(gain, "gain")
  flip_filter = checks.boolean(flip_filter, "flip_filter")
  if f.ndim not in (1, n) or f.size == 0:
    raise ValueError(
        f"filter must be 1-D (separable) or have one axis per spatial axis ({n}), with no "
        f"empty axis, got shape {tuple(f.shape)}")
  if not flip_filter:
    f = lax.rev(f, tuple(range(f.ndim)))
  sizes = parsed.spatial_shape(x.shape)
  ks = (f.shape[0],) * n if f.ndim == 1 else f.shape
  plans = [_axis_plan(s, k, u, d, lo, hi)
           for s, k, u, d, (lo, hi) in zip(sizes, ks, ups, downs, pads)]
  for axis, s, k, u, d, (lo, hi), plan in zip(parsed.spatial_axes, sizes, ks, ups, downs, pads,
                                               plans):
    if plan[0] < 1:
      raise ValueError(
          f"upfirdn's output size along axis {axis} ({parsed.spec[axis]!r}) would be "
          f"{plan[0]} = ({s} * {u} + {lo} + {hi} - {k} + {d}) // {d}; it must be at least 1 "
          f"(x.shape={tuple(x.shape)}, up={up!r}, down={down!r}, padding={padding!r}, "
          f"filter length {k})")
  if any(s == 0 for s in x.shape):
    return jnp.zeros(parsed.replace_spatial(x.shape, [p[0] for p in plans]), x.dtype)
  return _polyphase(x, f, tuple(parsed.spatial_axes), tuple(plans), gain)


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _polyphase(x, f, axes, plans, gain):
  """The polyphase program, compiled once per static plan (eager calls would otherwise
  compile each of its many small slices on its own)."""
  if f.ndim == 1 and len(axes) > 1:
    f = f * jnp.asarray(gain ** (1.0 / len(axes)), x.dtype)
    for axis, plan in zip(axes, plans):
      x = _upfirdn_axes(x, lambda idx: f[idx[0]], [axis], [plan])
    return x
  f = f * jnp.asarray(gain, x.dtype)
  return _upfirdn_axes(x, lambda idx: f[idx], list(axes), list(plans))


def check_filter_values(f: jax.Array, name: str, *, normalized: bool = False) -> None:
  """Raises ``ValueError`` for a concrete filter with a NaN or infinite tap, or (``normalized``:
  divided by its sum) a zero sum, each of which turns the whole output into NaN or inf.

  A filter is a small static argument, so its values are known at trace time; a traced one
  (a ``jit`` argument, or differentiated) has none to read and is left unchecked.
  """
  if isinstance(f, jax.core.Tracer):
    return
  values = np.asarray(f, np.float64)
  shown = values.tolist() if values.size <= 16 else checks.describe(f)
  if not np.all(np.isfinite(values)):
    raise ValueError(f"{name} must have finite taps (a NaN or inf tap makes every output NaN "
                     f"or inf), got {shown}")
  if normalized and np.sum(values) == 0:
    raise ValueError(f"{name} must have a non-zero sum: it is normalised to sum 1 (divided by "
                     f"its sum), got {shown} with sum 0")


def _binomial_filter(filter, n, name):
  f = checks.array(filter, name, kind="real")
  check_filter_values(f, name, normalized=True)
  if f.ndim not in (1, n) or f.size == 0:
    raise ValueError(
        f"{name} must be 1-D (separable) or have one axis per spatial axis ({n}), got shape "
        f"{tuple(f.shape)}")
  return f


def _normalized(f: jax.Array, dtype) -> jax.Array:
  f = f.astype(dtype)
  return f / jnp.sum(f)


def blur_upsample(
    x: jax.typing.ArrayLike,
    factor: IntOrSeq = 2,
    *,
    filter: jax.typing.ArrayLike = (1.0, 3.0, 3.0, 1.0),
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Upsampling by zero insertion and a normalised low-pass filter: StyleGAN2's ``upsample2d``.

  ``[N, *S, C] -> [N, *(S * s), C]`` (``s`` the factor per spatial axis): exactly
  ``upfirdn(x, f / sum(f), up=s, padding=((K + s - 1) // 2, (K - s) // 2), gain=prod(s))`` with
  ``K`` the filter length, which makes each output size exactly ``S * s`` and preserves a
  constant image away from the borders. With the default binomial filter ``[1, 3, 3, 1]`` and
  ``s = 2`` this is ``upfirdn2d.upsample2d`` of StyleGAN2-ADA-PyTorch (Karras et al. 2020,
  "Analyzing and Improving the Image Quality of StyleGAN") and of StyleGAN3's
  ``filtered_lrelu`` blur, for 1-D, 2-D and 3-D. Its transpose is ``blur`` + subsampling:
  ``upfirdn`` with ``up``/``down`` exchanged (see :func:`upfirdn`).

  Args:
    x: the input ``[N, *S, C]`` (or as ``layout`` says), floating point.
    factor: the upsampling factor, a positive int or one per spatial axis.
    filter: the low-pass filter, 1-D (separable) or one axis per spatial axis; it is normalised
      to sum 1 (per axis for a 1-D filter).
    layout: the layout string; ``None`` is channels-last with a batch axis by rank.

  Returns:
    ``[N, *(S * s), C]`` in ``x``'s dtype and layout.

  Raises:
    TypeError: if ``x`` is not floating point or ``factor`` is not an int.
    ValueError: if a factor is not positive or the filter's rank is not 1 or ``n``, or a
      concrete filter has a NaN or infinite tap or sums to 0 (a traced filter is not checked).

  Example:
    A constant signal stays constant away from the borders:

    >>> import jax.numpy as jnp
    >>> print(blur_upsample(jnp.ones(4), layout="W"))
    [0.75 1.   1.   1.   1.   1.   1.   0.75]
  """
  x = checks.array(x, "x", kind="floating")
  parsed = parse_layout(layout, x.ndim, require_channels=False,
                        num_spatial=spatial_ranks(layout, x.ndim, factor))
  n = parsed.num_spatial
  factors = checks.ints(factor, n, "factor")
  f = _normalized(_binomial_filter(filter, n, "filter"), x.dtype)
  ks = (f.shape[0],) * n if f.ndim == 1 else f.shape
  pads = tuple(((k + s - 1) // 2, (k - s) // 2) for k, s in zip(ks, factors))
  return upfirdn(x, f, up=factors, padding=pads, gain=float(math.prod(factors)),
                 layout=parsed.spec)


def blur_pool(
    x: jax.typing.ArrayLike,
    factor: IntOrSeq = 2,
    *,
    filter: jax.typing.ArrayLike = (1.0, 3.0, 3.0, 1.0),
    padding_mode: str = "reflect",
    layout: Optional[str] = None,
) -> jax.Array:
  r"""Anti-aliased downsampling: a normalised low-pass filter, then subsampling (BlurPool).

  ``[N, *S, C] -> [N, *ceil(S / s), C]``: along each axis with factor ``s`` and filter
  length ``K``, ``x`` is padded by ``((K - 1) // 2, ceil((K - 1) / 2))`` in
  ``padding_mode``, correlated with ``f / sum(f)`` and every ``s``-th sample kept:
  ``S_out = (S + K - 1 - K + s) // s = ceil(S / s)``. With the defaults (binomial
  ``[1, 3, 3, 1]``, reflect padding, factor 2) this is ``antialiased_cnns.BlurPool`` (Zhang
  2019, "Making Convolutional Networks Shift-Invariant Again"; ``filt_size=4``, ``stride=2``,
  ``pad_type='reflect'``), for 1-D, 2-D and 3-D. ``padding_mode="replicate"`` and ``"zeros"``
  are its ``'repl'`` and ``'zero'`` pad types. The filtering and subsampling are
  :func:`upfirdn` with ``down=s``, so only the kept samples are computed.

  Args:
    x: the input ``[N, *S, C]`` (or as ``layout`` says), floating point.
    factor: the downsampling factor (``stride``), a positive int or one per spatial axis.
    filter: the low-pass filter, 1-D (separable) or one axis per spatial axis; normalised to
      sum 1. antialiased-cnns' ``filt_size=k`` is the binomial row ``k`` (``[1, 2, 1]`` for
      3, ``[1, 4, 6, 4, 1]`` for 5).
    padding_mode: ``"reflect"`` (default, as antialiased-cnns), ``"replicate"`` or ``"zeros"``.
    layout: the layout string; ``None`` is channels-last with a batch axis by rank.

  Returns:
    ``[N, *ceil(S / s), C]`` in ``x``'s dtype and layout.

  Raises:
    TypeError: if ``x`` is not floating point or ``factor`` is not an int.
    ValueError: if a factor is not positive, ``padding_mode`` is unknown, the filter's rank is
      not 1 or ``n``, a concrete filter has a NaN or infinite tap or sums to 0 (a traced
      filter is not checked), or a reflect padding is not smaller than its axis.

  Example:
    >>> import jax.numpy as jnp
    >>> print(blur_pool(jnp.array([0.0, 0.0, 8.0, 8.0, 0.0, 0.0]), layout="W"))
    [1. 6. 1.]
  """
  x = checks.array(x, "x", kind="floating")
  parsed = parse_layout(layout, x.ndim, require_channels=False,
                        num_spatial=spatial_ranks(layout, x.ndim, factor))
  n = parsed.num_spatial
  factors = checks.ints(factor, n, "factor")
  padding_mode = checks.choice(padding_mode, "padding_mode", PADDING_MODES,
                               aliases={"refl": "reflect", "repl": "replicate", "zero": "zeros",
                                        "edge": "replicate", "constant": "zeros"})
  f = _normalized(_binomial_filter(filter, n, "filter"), x.dtype)
  ks = (f.shape[0],) * n if f.ndim == 1 else f.shape
  widths = [(0, 0)] * x.ndim
  for axis, k in zip(parsed.spatial_axes, ks):
    widths[axis] = ((k - 1) // 2, k // 2)
    if padding_mode == "reflect" and k // 2 >= max(x.shape[axis], 1):
      raise ValueError(
          f"padding_mode='reflect' needs each padded spatial size to exceed its padding; axis "
          f"{axis} ({parsed.spec[axis]!r}) has size {x.shape[axis]} and padding {k // 2}")
  xp = sharding.pad(x, widths, _JNP_PAD_MODES[padding_mode])  # halo-only when sharded
  return upfirdn(xp, f, down=factors, flip_filter=True, layout=parsed.spec)
